"""Fleet benchmark: a code-change rollout to 1, 4, 8 and 16 hosts.

One fleet of 16 hosts gets ``setup-stage`` and a cold deploy of the example act (each timed
once, all 16 hosts together), then, for each size, ``--runs`` rollouts (default 2, to stay near
5 minutes on 2 CPUs) of a one-line template change to the first N hosts (``deploy-act storefront --hosts h1,...``). Each
row: median wall seconds of the ``backstage`` program (CLI start included), remote commands and
KiB sent per host, and the median seconds of each remote step. Parallelism is Backstage's
default (``Options.parallel``: 32 hosts at a time); every host runs on this one machine, so the
hosts' own work (Django checks, migrations, collectstatic, starting two workers) competes for
its CPUs: that, not SSH, is what grows with the fleet here.

Run as root: ``.venv/bin/python bench/fleet.py [--runs N]`` (about 5 minutes on 2 CPUs).
"""

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import edit, machine, median, per_host, step_times, table, timed

from backstage.rollout.hosts import Options
from backstage.sandbox.testbed import make_stage

PREFIX = "bsbench"
SIZES = (1, 4, 8, 16)
HOME = "greetings/templates/greetings/home.html"


def row(label: str, runs) -> list[str]:
    seconds = [r.seconds for r in runs]
    return [label, str(len(runs)), f"{median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
            per_host(runs, "commands"), per_host(runs, "kib"), step_times(runs)]


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
        finally:
            stage.fleet.stop()

    header = ["rollout", "runs", "median s (min-max)", "cmds/host", "KiB sent/host",
              "median s per remote step"]
    print(table(header, rows))
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    print(f"\ncode-change rollout, {SIZES[-1]} hosts vs 1: {ratio:.2f}x the wall time "
          f"(parallel = {Options().parallel} hosts at a time, Backstage's default)")
    print(f"{len(names)} fleet hosts booted in {boot:.1f}s; all on this machine, so hosts' work "
          "shares its CPUs; wall time includes the CLI's start")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
