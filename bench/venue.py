"""Venue build benchmark: virtualenv + pip against uv, on two fleet hosts of one production.

Host h1 has no uv (venues: ``python3 -m venv`` + pip); h2 has uv in root's ``~/.local/bin``
(venues: ``uv venv`` + ``uv pip install``). Each run changes the act's requirements (a comment
naming the run, so every run is a new venue), pre-builds the wheels on the workstation, then
deploys to h1 and to h2 one after the other (alternating which goes first), and reports the
seconds of each host's ``venue`` step: unpacking the shipped wheels (tar on stdin) and building
the venue from them, offline. Run 1 on h2 starts with an empty uv cache.

Run as root: ``.venv/bin/python bench/venue.py [--runs N]``.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, median, table, timed
from deploy import prebuild_wheels

from tests.support.testbed import make_stage

PREFIX = "bsbenchuv"
UV = Path(sys.executable).parent / "uv"



def venue_seconds(stage, host: str) -> float:
    run = timed(stage, "deploy-act", "storefront", "--hosts", host)
    return run.step_seconds["venue"][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefix", default=PREFIX)
    args = parser.parse_args()
    started = time.monotonic()
    seconds = {"h1": [], "h2": []}
    with tempfile.TemporaryDirectory(prefix="bs-bench-uv-") as work:
        stage = make_stage(Path(work), "benchuv", {"h1": "", "h2": ""}, prefix=args.prefix)
        try:
            stage.give_tool("h2", UV)
            stage.cli("setup-stage")
            requirements = stage.source / "requirements.txt"
            original = requirements.read_text()
            for i in range(args.runs):
                requirements.write_text(f"{original}# bench venue variant {i}\n")
                prebuild_wheels(stage)
                for host in (["h1", "h2"] if i % 2 == 0 else ["h2", "h1"]):
                    seconds[host].append(venue_seconds(stage, host))
        finally:
            stage.fleet.stop()
    rows = [[label, f"{median(s):.2f}", " ".join(f"{x:.2f}" for x in s)]
            for label, s in (("virtualenv + pip (h1)", seconds["h1"]),
                             ("uv (h2)", seconds["h2"]))]
    print(table(["venue build", "median s", "each run (s)"], rows))
    print(f"\n{args.runs} runs; the act's requirements (Django and its deps), from shipped "
          "wheels, offline.")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
