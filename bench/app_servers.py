"""Application servers compared: the storefront's page through nginx on uWSGI, gunicorn (sync
and gthread) and granian (WSGI), each deployed by Backstage on the same fleet host.

Every side runs 2 processes; the threaded ones 2 threads each (gunicorn's sync worker has
one). Per side, after a 2 s warm-up: ``wrk -t2 -c50 -d<duration>s --latency`` GET / (Host:
shop.example.test) inside the host's network namespace (loopback only), ``--runs`` rounds in
turn; printed: median requests/s, median p99 latency, and the mean RSS of a worker (the app's
processes, not the supervising master) after the load.

Run as root: ``.venv/bin/python bench/app_servers.py [--runs N] [--duration S]`` (about 4
minutes). The ASGI side of issue 20 (async endpoints on gunicorn/uvicorn and granian ASGI) is
not measured here yet.
"""

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

from benchlib import machine, median, table

from tests.support.testbed import DOMAIN, make_stage

PRODUCTION = "servers"
HOST = "h1"
HEALTH_LINE = 'health = { path = "/healthz" }'
SIDES = {
    "uwsgi": 'server = "uwsgi"\nprocesses = 2\nthreads = 2',
    "gunicorn sync": 'server = "gunicorn"\nprocesses = 2\nthreads = 1',
    "gunicorn gthread": 'server = "gunicorn"\nprocesses = 2\nthreads = 2',
    "granian wsgi": 'server = "granian"\nprocesses = 2\nthreads = 2',
}
REQUESTS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
P99 = re.compile(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(stage, seconds: int) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) of one wrk run against the gig."""
    out = subprocess.run(
        ["ip", "netns", "exec", stage.fleet.host(HOST).netns, "wrk", "-t2", "-c50",
         f"-d{seconds}s", "--latency", "-H", f"Host: {DOMAIN}", "http://127.0.0.1/"],
        capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    p99 = P99.search(out)
    return float(REQUESTS.search(out).group(1)), float(p99.group(1)) * UNIT_MS[p99.group(2)]


def worker_rss_mb(stage, server: str) -> float:
    """Mean RSS of the live release's workers: uWSGI's, or the HTTP server's children."""
    act = json.loads(stage.cli("status", "--json").stdout)[HOST]["storefront"]
    release = act["current"].rsplit("/", 1)[1]
    sess = next(s for s in act["sesses"] if s["release"] == release)
    workers = sess["workers"] if server == "uwsgi" else sess["workers"][1:]
    sizes = []
    for pid in workers:
        status = stage.fleet.run(HOST, ["cat", f"/proc/{pid}/status"], check=False).stdout
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            sizes.append(int(found.group(1)) / 1024)
    return sum(sizes) / max(len(sizes), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    results = {side: {"rps": [], "p99": [], "rss": []} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), PRODUCTION, {HOST: 'roles = ["web"]'}, prefix="bssrv")
        original = stage.inventory.read_text()
        try:
            stage.cli("setup-stage")
            for _ in range(args.runs):
                for side, settings in SIDES.items():
                    stage.inventory.write_text(
                        original.replace(HEALTH_LINE, f"{HEALTH_LINE}\n{settings}", 1))
                    stage.cli("deploy-act", "storefront")
                    wrk(stage, 2)
                    rps, p99 = wrk(stage, args.duration)
                    results[side]["rps"].append(rps)
                    results[side]["p99"].append(p99)
                    results[side]["rss"].append(worker_rss_mb(stage, side.split()[0]))
        finally:
            stage.fleet.stop()
    rows = [[side, f"{median(r['rps']):.0f}", f"{median(r['p99']):.1f}",
             f"{median(r['rss']):.1f}"] for side, r in results.items()]
    print(table(["server", "requests/s", "p99 ms", "RSS/worker MB"], rows))
    print(f"\nwrk -t2 -c50 -d{args.duration}s --latency GET / (Host: {DOMAIN}) through nginx, "
          f"inside the host's network namespace; medians of {args.runs} rounds; "
          "2 processes x 2 threads (gunicorn sync: 1 thread)")
    print(machine())


if __name__ == "__main__":
    main()
