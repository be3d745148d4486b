"""Cold deploy benchmark: a new host, and a workstation whose wheel cache is empty.

Rows, each the median of ``--runs`` runs (default 2) of the ``backstage`` program as a user runs
it, on a brand-new fleet host each run:

* setup-stage with an empty workstation cache (``$BACKSTAGE_CACHE`` a new folder): the
  Emperor's uWSGI must be made for the host, which is compiled from its sdist (no wheel exists);
* deploy of the example act right after, its requirements never fetched before;
* the same two on another new host with the cache now warm.

Columns: median wall seconds (min-max), remote commands per host, KiB sent per host, and the
median seconds of each remote step (``build`` is uWSGI compiled on a builder host).

Run as root: ``.venv/bin/python bench/cold_deploy.py [--runs N]`` (about 4 minutes a run on 2
cores, most of it compiling uWSGI).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchlib import fresh_fleet, machine, median, per_host, step_times, table, timed

from tests.support.testbed import make_stage

PREFIX = "bscold"
HOST = "h1"


def row(label: str, runs) -> list[str]:
    seconds = [r.seconds for r in runs]
    return [label, f"{median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
            per_host(runs, "commands"), per_host(runs, "kib"), step_times(runs)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    n = parser.parse_args().runs
    started = time.monotonic()
    results = {"cold setup": [], "cold deploy": [], "warm setup": [], "warm deploy": []}
    with tempfile.TemporaryDirectory(prefix="bs-cold-") as work:
        stage = make_stage(Path(work), "cold", {HOST: 'roles = ["web"]'}, prefix=PREFIX)
        try:
            for i in range(n):
                os.environ["BACKSTAGE_CACHE"] = str(Path(work) / f"cache-{i}")
                for temperature in ("cold", "warm"):
                    if i or temperature == "warm":
                        fresh_fleet(stage, [HOST], PREFIX)
                    results[f"{temperature} setup"].append(timed(stage, "setup-stage"))
                    results[f"{temperature} deploy"].append(
                        timed(stage, "deploy-act", "storefront"))
                    assert stage.page()[0] == 200
        finally:
            stage.fleet.stop()
    rows = [row("setup-stage, new host, empty cache", results["cold setup"]),
            row("deploy, right after, empty cache", results["cold deploy"]),
            row("setup-stage, new host, warm cache", results["warm setup"]),
            row("deploy, right after, warm cache", results["warm deploy"])]
    print(table(["scenario", "median s (min-max)", "cmds/host", "KiB sent/host",
                 "median s per step"], rows))
    print(f"\n{n} runs per row, one new fleet host each, `backstage ... --verbose` in a "
          "subprocess (wall time includes CLI start and the workstation's downloads).")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
