"""Fleet benchmark: a code-change rollout to 1, 4, 8 and 16 hosts.

One fleet of 16 hosts gets ``setup-stage`` and a cold deploy of the example act (each timed
once, all 16 hosts together), then, for each size, ``--runs`` rollouts (default 2, to stay near
5 minutes on 2 CPUs) of a one-line template change to the first N hosts (``deploy-act storefront --hosts h1,...``). Each
row: median wall seconds of the ``backstage`` program (CLI start included), remote commands and
KiB sent per host, and the median seconds of each remote step. Parallelism is Backstage's
default (``Options.parallel``: 32 hosts at a time); every host runs on this one machine, so the
hosts' own work (Django checks, migrations, collectstatic, starting two workers) competes for
its CPUs: that, not SSH, is what grows with the fleet here.

Then, on the same 16 deployed hosts, a no-op rollout (the same code again) and ``status``, to 1
and 16 hosts; and on a second fleet of 128 bare hosts (sshd only: a few MB each, nothing
deployed, so ``status`` finds no act) ``status`` over 1, 16, 64 and 128 hosts. These rows also
show the CLI's CPU seconds (the program and its SSH proxy commands, from ``getrusage``), from
which, with the bytes and commands per host, the script prints a model of a 1,000-host rollout
with its assumptions.

Run as root: ``.venv/bin/python bench/fleet.py [--runs N]`` (about 10 minutes on 2 CPUs).
"""

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from benchlib import edit, machine, median, per_host, step_times, table, timed

from backstage.engine.hosts import Options
from backstage.transport.ssh import MAX_HANDSHAKES
from tests.support.testbed import make_stage

PREFIX = "bsbench"
SIZES = (1, 4, 8, 16)
BARE_SIZES = (1, 16, 64, 128)
# The 1,000-host model's assumptions (printed with it).
MODEL_HOSTS = 1000
RTT = 0.05  # seconds, workstation to a host
HANDSHAKE_RTTS = 4  # TCP, key exchange, authentication, session
UPLINK = 100e6 / 8  # bytes per second
HOME = "greetings/templates/greetings/home.html"


def row(label: str, runs) -> list[str]:
    seconds = [r.seconds for r in runs]
    return [label, str(len(runs)), f"{median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
            f"{median([r.cpu for r in runs]):.2f}", per_host(runs, "commands"),
            per_host(runs, "kib"), step_times(runs)]


def sized(stage, names: list[str], label: str, n: int, *args: str) -> list:
    """``n`` timed runs of ``backstage <args> --hosts <names>``."""
    runs = [timed(stage, *args, "--hosts", ",".join(names)) for _ in range(n)]
    assert set(runs[-1].commands) == set(names), (label, runs[-1].commands)
    return runs


def per_host_cost(small: list, large: list, hosts: int) -> tuple[float, float]:
    """Marginal CPU seconds per host between two sizes, and the fixed start cost."""
    one, many = median([r.cpu for r in small]), median([r.cpu for r in large])
    marginal = max(0.0, (many - one) / (hosts - 1))
    return marginal, one - marginal


def model(label: str, small: list, large: list, hosts: int) -> list[str]:
    """A 1,000-host estimate of a run measured at 1 and ``hosts`` hosts: the larger of the
    workstation's CPU, its uplink, and the handshakes and round trips in waves."""
    cpu, fixed = per_host_cost(small, large, hosts)
    commands = median([median(list(r.commands.values())) for r in large])
    sent = median([median(list(r.kib.values())) for r in large]) * 1024
    cores = os.cpu_count() or 1
    cpu_s = fixed + cpu * MODEL_HOSTS / cores
    uplink_s = sent * MODEL_HOSTS / UPLINK
    waves = math.ceil(MODEL_HOSTS / Options().parallel)
    handshake_s = MODEL_HOSTS / MAX_HANDSHAKES * HANDSHAKE_RTTS * RTT
    trips_s = waves * commands * RTT
    return [label, f"{cpu:.3f}", f"{cpu_s:.1f}", f"{uplink_s:.1f}", f"{handshake_s:.1f}",
            f"{trips_s:.1f}", f"{max(cpu_s, uplink_s, handshake_s + trips_s):.1f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    n = parser.parse_args().runs
    started = time.monotonic()
    names = [f"h{i}" for i in range(1, max(SIZES) + 1)]
    rows, medians = [], {}
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), "bench", {h: 'roles = ["web"]' for h in names},
                           prefix=PREFIX)
        try:
            boot = time.monotonic() - started
            rows.append(row(f"setup-stage, {len(names)} new hosts", [timed(stage, "setup-stage")]))
            rows.append(row(f"cold deploy, {len(names)} hosts",
                            [timed(stage, "deploy-act", "storefront")]))
            for size in SIZES:
                runs = []
                for i in range(n):
                    edit(stage, HOME, "<h1>", f"<h1>{size}.{i} ")
                    runs.append(timed(stage, "deploy-act", "storefront",
                                      "--hosts", ",".join(names[:size])))
                    assert set(runs[-1].commands) == set(names[:size]), runs[-1].commands
                medians[size] = median([r.seconds for r in runs])
                rows.append(row(f"code change -> {size} host{'s' if size > 1 else ''}", runs))
            for host in (names[0], names[-1]):
                status, body = stage.page(host=host)
                assert status == 200 and f"{SIZES[-1]}.{n - 1}" in body, (host, status)
            noops, statuses = {}, {}
            for size in (1, len(names)):
                noops[size] = sized(stage, names[:size], "no-op", n, "deploy-act", "storefront")
                rows.append(row(f"no-op rollout -> {size} deployed", noops[size]))
                statuses[size] = sized(stage, names[:size], "status", n, "status")
                rows.append(row(f"status -> {size} deployed", statuses[size]))
        finally:
            stage.fleet.stop()
        bare_names = [f"b{i}" for i in range(1, max(BARE_SIZES) + 1)]
        bare = make_stage(Path(work) / "bare", "bare", {h: 'roles = ["web"]' for h in bare_names},
                          prefix=PREFIX)
        try:
            bares = {}
            for size in BARE_SIZES:
                bares[size] = sized(bare, bare_names[:size], "status", n, "status")
                rows.append(row(f"status -> {size} bare", bares[size]))
        finally:
            bare.fleet.stop()

    header = ["rollout", "runs", "median s (min-max)", "CLI CPU s", "cmds/host", "KiB sent/host",
              "median s per remote step"]
    print(table(header, rows))
    big = len(names)
    print(f"\nno-op rollout, {big} hosts vs 1: "
          f"{median([r.seconds for r in noops[big]]) / median([r.seconds for r in noops[1]]):.2f}x;"
          f" status, {BARE_SIZES[-1]} bare hosts vs 1: "
          f"{median([r.seconds for r in bares[BARE_SIZES[-1]]]) / median([r.seconds for r in bares[1]]):.2f}x")
    print(f"\nModel of {MODEL_HOSTS} hosts, seconds (each term alone; the estimate is the largest"
          " of CPU, uplink, and handshakes plus round trips):")
    print(table(["run", "CLI CPU s/host", "CPU", "uplink", "handshakes", "round trips",
                 "estimate"],
                [model("no-op rollout", noops[1], noops[big], big),
                 model("status", bares[1], bares[BARE_SIZES[-1]], BARE_SIZES[-1])]))
    print(f"Assumptions: CPU = the fixed start + marginal CLI CPU per host (measured between 1 "
          f"and the largest size) x hosts / {os.cpu_count()} cores, all cores usable by the "
          f"CLI's threads (its crypto and proxy commands release the GIL; pure-Python parts do "
          f"not, so this is a lower bound); uplink {UPLINK * 8 / 1e6:.0f} Mbit/s for the bytes "
          f"sent per host; handshakes {MAX_HANDSHAKES} at a time (MAX_HANDSHAKES), "
          f"{HANDSHAKE_RTTS} round trips each at {RTT * 1000:.0f} ms RTT; commands per host "
          f"in waves of --parallel {Options().parallel}, one RTT each; host-side work not "
          "counted (hosts work in parallel, each on its own CPUs).")
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    print(f"\ncode-change rollout, {SIZES[-1]} hosts vs 1: {ratio:.2f}x the wall time "
          f"(parallel = {Options().parallel} hosts at a time, Backstage's default)")
    print(f"{len(names)} fleet hosts booted in {boot:.1f}s; all on this machine, so hosts' work "
          "shares its CPUs; wall time includes the CLI's start")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
