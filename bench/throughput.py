"""Throughput benchmark: the deployed example act through nginx vs a hand-run uWSGI of it.

Deploys the example act on one fleet host, then on that same host, next to it, starts
hand-written uWSGI instances of the very same release code, venue, working directory and
environment (the act's env file), with the act's processes and threads, ``master`` and
``listen = 1024``:

* ``reference-nolog``: nothing else, plus ``disable-logging``;
* ``reference-log``: nothing else, logging every request to a file as the act's vassal does;
* ``reference-log+vassal-options``: that plus the vassal's other options (harakiri,
  max-requests, enable-threads, single-interpreter, stats...), so a gap between the gig and
  the plain references can be told apart: options, or the Emperor and the socket symlink.

Each sits behind its own nginx server block on its own port, a copy of the gig's server block
with only the port, the socket and the access log changed, so every side is nginx + uWSGI over a
unix socket, and all share one nginx.

Load: ``wrk -t2 -c50 -d10s -H 'Host: shop.example.test' http://127.0.0.1:<port>/`` run inside
the host's network namespace (loopback only), after a 2 s warm-up of each side; the sides are
measured in turn, ``--runs`` rounds (default 3), each round starting with the next side. Per
side: median requests/s, the gig's ratio to it (of medians, and the median of the ratios within
a round), and uWSGI CPU per request (master and workers, from /proc), which is much less
sensitive than requests/s to other work on the machine: wrk, nginx and all workers share its
CPUs.

Run as root: ``.venv/bin/python bench/throughput.py [--runs N] [--duration S]`` (about 3
minutes).
"""

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import machine, median, table

from tests.support.testbed import DOMAIN, make_stage

PRODUCTION = "bench"
HOST = "h1"
ROOT = f"/srv/backstage/{PRODUCTION}"
REF = "/srv/bench-reference"
GIG_PORT = 80
REQUESTS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
TOTAL = re.compile(r"(\d+) requests in ")
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def sh(stage, script: str) -> str:
    return stage.fleet.run(HOST, script).stdout


def vassal_settings(stage) -> dict[str, list[str]]:
    """The live release's vassal ini, as key -> values."""
    release = sh(stage, f"readlink {ROOT}/acts/storefront/current").strip().split("/")[-1]
    text = sh(stage, f"cat {ROOT}/vassals/storefront@{release}.ini")
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith((";", "#", "[")):
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# Options of Backstage's vassal that the plain references leave out; the third reference adds
# them back (values from the act's vassal), to tell their cost from the Emperor's.
VASSAL_OPTIONS = ("strict", "need-app", "die-on-term", "vacuum", "single-interpreter",
                  "enable-threads", "harakiri", "max-requests", "max-requests-delta")


def reference_ini(vassal: dict[str, list[str]], name: str, logging: bool,
                  vassal_options: bool = False) -> str:
    """A hand-written uWSGI config of the same app: same code, venue, cwd, env, workers."""
    lines = [
        "[uwsgi]",
        "master = true",
        f"processes = {vassal['processes'][0]}",
        f"threads = {vassal['threads'][0]}",
        "listen = 1024",
        f"socket = {REF}/{name}.sock",
        "chmod-socket = 660",
        *(f"chown-socket = {v}" for v in vassal.get("chown-socket", [])),
        f"virtualenv = {vassal['virtualenv'][0]}",
        f"chdir = {vassal['chdir'][0]}",
        f"pythonpath = {vassal['pythonpath'][0]}",
        f"module = {vassal['module'][0]}",
        *(f"env = {v}" for v in vassal["env"] if v != "%(_)"),
        f"for-readline = {vassal['for-readline'][0]}",
        "env = %(_)",
        "endfor =",
        f"pidfile = {REF}/{name}.pid",
        f"daemonize = {REF}/{name}.log",
    ]
    if not logging:
        lines.append("disable-logging = true")
    if vassal_options:
        lines += [f"{key} = {vassal[key][0]}" for key in VASSAL_OPTIONS if key in vassal]
        lines.append(f"stats = {REF}/{name}.stats")
    return "\n".join(lines) + "\n"


def reference_server(gig_conf: str, port: int, name: str) -> str:
    """The gig's server block with only its port, upstream socket and access log changed."""
    text, listens = re.subn(r"listen \d+;", f"listen {port};", gig_conf)
    text, passes = re.subn(r"uwsgi_pass unix:\S+;", f"uwsgi_pass unix:{REF}/{name}.sock;", text)
    text, logs = re.subn(r"access_log \S+;", f"access_log {REF}/nginx-{name}.access.log;", text)
    assert (listens, passes, logs) == (1, 1, 1), (listens, passes, logs)
    return text


def start_references(stage, sides: dict[str, tuple[int, bool, bool]]) -> dict[str, list[str]]:
    vassal = vassal_settings(stage)
    uwsgi = f"{ROOT}/stage/venv/bin/uwsgi"
    gig_conf = sh(stage, f"cat /etc/nginx/sites-enabled/backstage-{PRODUCTION}-shop.conf")
    sh(stage, f"mkdir -p {REF} && chmod 755 {REF}")
    for name, (port, logging, vassal_options) in sides.items():
        stage.fleet.run(HOST, ["tee", f"{REF}/{name}.ini"],
                        input=reference_ini(vassal, name, logging, vassal_options))
        stage.fleet.run(HOST, ["tee", f"/etc/nginx/sites-enabled/bench-{name}.conf"],
                        input=reference_server(gig_conf, port, name))
        stage.fleet.run(HOST, [uwsgi, "--ini", f"{REF}/{name}.ini"])
    sh(stage, "nginx -t -q && nginx -s reload")
    for name, (port, _, _) in sides.items():
        deadline = time.monotonic() + 30
        while stage.page(port=port)[0] != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"reference {name} not answering on :{port}:\n"
                                     + sh(stage, f"tail -20 {REF}/{name}.log"))
            time.sleep(0.2)
    return vassal


def cpu_seconds(stage, needle: str) -> float:
    """CPU time so far of one uWSGI instance: its master (with its reaped workers) and workers.

    Workers that exit (``max-requests``) are reaped by the master, which then holds their time
    in cutime/cstime, so the difference of two readings counts every worker.
    """
    listing = stage.fleet.run(HOST, ["ps", "-eo", "pid=,args="]).stdout.splitlines()
    pids = [line.split()[0] for line in listing if needle in line and "ps -eo" not in line]
    stats = stage.fleet.run(HOST, ["cat", *(f"/proc/{pid}/stat" for pid in pids)],
                            check=False).stdout
    ticks = 0
    for line in stats.splitlines():
        fields = line.rpartition(")")[2].split()
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(stage, port: int, seconds: int, needle: str | None = None) -> dict:
    cpu = cpu_seconds(stage, needle) if needle else 0.0
    netns = stage.fleet.host(HOST).netns
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "wrk", "-t2", "-c50", f"-d{seconds}s", "-H",
         f"Host: {DOMAIN}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    cpu = cpu_seconds(stage, needle) - cpu if needle else 0.0
    errors = SOCKET_ERRORS.search(out)
    non_2xx = NON_2XX.search(out)
    total = int(TOTAL.search(out).group(1))
    return {"rps": float(REQUESTS.search(out).group(1)), "cpu_ms": 1000 * cpu / max(total, 1),
            "errors": sum(map(int, errors.groups())) if errors else 0,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    started = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    # name -> (port, logs every request, has the vassal's other options)
    sides = {"reference-nolog": (8081, False, False), "reference-log": (8082, True, False),
             "reference-log+vassal-options": (8083, True, True)}
    # side -> (port, text in the command line of its uWSGI processes)
    targets = {"backstage gig": (GIG_PORT, f"[{PRODUCTION}/storefront@"),
               **{name: (port, f"{REF}/{name}.ini") for name, (port, _, _) in sides.items()}}
    results: dict[str, list[dict]] = {name: [] for name in targets}
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), PRODUCTION, {HOST: 'roles = ["web"]'}, prefix="bsbench")
        try:
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            vassal = start_references(stage, sides)
            pages = {name: stage.page(port=port) for name, (port, _) in targets.items()}
            assert len(set(pages.values())) == 1, "the sides serve different pages"
            for port, _ in targets.values():
                wrk(stage, port, 2)
            order = list(targets)
            for i in range(args.runs):  # each round starts with the next side: no side always first
                for name in order[i % len(order):] + order[:i % len(order)]:
                    port, needle = targets[name]
                    results[name].append(wrk(stage, port, args.duration, needle))
        finally:
            stage.fleet.stop()

    gig = results["backstage gig"]
    gig_rps = median([r["rps"] for r in gig])
    rows = []
    for name, runs in results.items():
        rps = [r["rps"] for r in runs]
        paired = median([g["rps"] / r["rps"] for g, r in zip(gig, runs)])
        rows.append([name, f":{targets[name][0]}", f"{median(rps):.0f}",
                     " ".join(f"{x:.0f}" for x in rps), f"{gig_rps / median(rps):.2f}",
                     f"{paired:.2f}", f"{median([r['cpu_ms'] for r in runs]):.2f}",
                     str(sum(r["errors"] for r in runs)), str(sum(r["non_2xx"] for r in runs))])
    print(table(["side", "port", "median req/s", "each run", "gig/side (medians)",
                 "gig/side (paired)", "uWSGI CPU ms/req", "socket errors", "non-2xx"], rows))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nwrk -t2 -c50 -d{args.duration}s GET / (Host: {DOMAIN}) inside the host's network "
          f"namespace, {args.runs} runs per side, sides in turn, rotating which goes first (paired: median over rounds of "
          "gig/side within the same round); nginx + uWSGI over a unix socket on every side")
    print(f"act: processes = {vassal['processes'][0]}, threads = {vassal['threads'][0]}; "
          "the gig's vassal logs every request (logto); so do the reference-log sides, "
          "reference-nolog not; +vassal-options: " + ", ".join(VASSAL_OPTIONS) + ", stats "
          "(the vassal's values); uWSGI CPU = master + workers, from /proc, per request served")
    print(f"load average (1/5/15 min) before {' '.join(load_before)}, after "
          f"{' '.join(load_after)}: other work on this machine shares its CPUs")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
