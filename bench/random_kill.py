"""Random-kill trial: SIGKILL the workstation at N random moments of a rollout, then recover.

Stages the example act on three fleet hosts, times one uninterrupted ``deploy-act --serial 1``
of a changed page, then N times: changes the page, starts the same deploy, SIGKILLs its whole
process group at a moment drawn uniformly from that duration, notes what the fleet was left
with (hosts switched, hosts locked, split or not) and whether ``status`` named the split (and
only then), then recovers with one command and no ``unlock``: ``converge`` on even trials,
``deploy-act --serial 1`` on odd ones. Counts the outcomes: one release everywhere answering
200, on the new release (the killed rollout's page) or the old one, and failures.

Run as root: ``.venv/bin/python bench/random_kill.py [N] [--seed S]`` (N defaults to 20;
about 20 s a trial).
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchlib import REPO  # noqa: F401  (puts the repository on the path)

from tests.support.testbed import make_stage

HOSTS = ("h1", "h2", "h3")
HOME = "greetings/templates/greetings/home.html"
HEALTH_LINE = 'health = { path = "/healthz" }\n'
BAKE = 1
SETTLE = 2


def set_heading(stage, text: str) -> None:
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{text}</h1>", path.read_text(), count=1))


def deploy(stage) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backstage", "deploy-act", "storefront", "--serial", "1",
         "--inventory", str(stage.inventory)], cwd=stage.work, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def fleet_state(stage) -> tuple[dict[str, str], list[str]]:
    root = f"/srv/backstage/{stage.inventory.stem}"
    live = {h: stage.fleet.run(h, f"readlink {root}/acts/storefront/current").stdout.strip()
            for h in HOSTS}
    info = f"{root}/state/locks/act/storefront/info.json"
    locked = [h for h in HOSTS
              if stage.fleet.run(h, f"test -e {info}", check=False).returncode == 0]
    return live, locked


def trial(stage, number: int, moment: float, old_heading: str) -> dict:
    """One kill at ``moment`` seconds into the rollout, and one recovery; ``old_heading``:
    the page live before it."""
    before, _ = fleet_state(stage)
    heading = f"Trial {number}"
    set_heading(stage, heading)
    killed = deploy(stage)
    time.sleep(moment)
    finished_first = killed.poll() is not None
    if not finished_first:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    # A command the workstation had started on a host runs on until its next write to the
    # dead connection: let it end before looking.
    time.sleep(SETTLE)
    live, locked = fleet_state(stage)
    split = len(set(live.values())) > 1
    status = stage.cli("status", "--act", "storefront", check=False).stdout
    named = ("storefront is split across releases: " in status) == split
    how = ("converge",) if number % 2 == 0 else ("deploy-act", "--serial", "1")
    started = time.monotonic()
    done = stage.cli(*how, "storefront", check=False)
    seconds = time.monotonic() - started
    after, still_locked = fleet_state(stage)
    pages = [stage.page("/", h) for h in HOSTS]
    serving = all(code == 200 for code, _ in pages)
    ends = {("new" if f"<h1>{heading}</h1>" in body else
             "old" if f"<h1>{old_heading}</h1>" in body else "other") for _, body in pages}
    one = len(set(after.values())) == 1
    return {"moment": moment, "switched": sum(live[h] != before[h] for h in HOSTS),
            "locked": len(locked), "split": split, "status named it": named,
            "finished before the kill": finished_first, "recovery": how[0],
            "exit": done.returncode, "seconds": seconds,
            "converged": one and serving and not still_locked and len(ends) == 1,
            "ended": next(iter(ends)) if len(ends) == 1 else "mixed",
            "live heading": heading if ends == {"new"} else old_heading}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", nargs="?", type=int, default=20)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), "kills", {h: 'roles = ["web"]' for h in HOSTS},
                           prefix="bskill")
        try:
            stage.inventory.write_text(stage.inventory.read_text().replace(
                HEALTH_LINE, f"{HEALTH_LINE}bake = {BAKE}\n"))
            set_heading(stage, "Warm-up")
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            set_heading(stage, "Before the trials")
            started = time.monotonic()
            stage.cli("deploy-act", "storefront", "--serial", "1")
            full = time.monotonic() - started
            results, live = [], "Before the trials"
            for number in range(args.trials):
                results.append(trial(stage, number, rng.uniform(0, full), live))
                live = results[-1]["live heading"]
                print(f"trial {number}: {results[-1]}", file=sys.stderr, flush=True)
        finally:
            stage.fleet.stop()
    print(f"one uninterrupted 3-host --serial 1 rollout (bake {BAKE} s): {full:.1f} s; "
          f"{args.trials} kills at uniform random moments within it (seed {args.seed})\n")
    print("  #  moment  switched  locked  split  status ok  recovery    exit  seconds  ended")
    for n, r in enumerate(results):
        print(f"{n:3d}  {r['moment']:6.2f}  {r['switched']:8d}  {r['locked']:6d}  "
              f"{'yes' if r['split'] else 'no':5s}  {'yes' if r['status named it'] else 'NO':9s}  "
              f"{r['recovery']:10s}  {r['exit']:4d}  {r['seconds']:7.1f}  "
              f"{r['ended'] if r['converged'] else 'NOT CONVERGED: ' + r['ended']}")
    count = Counter()
    for r in results:
        count["split at the kill"] += r["split"]
        count["locks left at the kill"] += r["locked"] > 0
        count["status named the split correctly"] += r["status named it"]
        count["one command converged (one release, 200, no lock)"] += r["converged"]
        count[f"ended on the {r['ended']} release"] += r["converged"]
        count["recovery exited 0"] += r["exit"] == 0
    print()
    for what, n in count.items():
        print(f"{what}: {n} of {len(results)}")


if __name__ == "__main__":
    main()
