"""Deploy benchmark: what each kind of deploy costs on one fleet host.

Rows, each the median of ``--runs`` runs (default 3) of the ``backstage`` program as a user runs
it (wall time includes the CLI's start):

* setup-stage on a brand-new host, then the cold deploy of the example act on it (a new fleet
  host every run: new disks, keys and namespaces). The workstation's wheel cache
  (``~/.cache/backstage``: the uWSGI wheel and the act's requirements) stays warm throughout, so
  neither row includes making wheels, only shipping and installing them (see
  ``bench/cold_deploy.py`` for an empty cache);
* warm redeploy after a one-line template change (requirements unchanged);
* no-op deploy (same code again);
* rollback to the previous release (after the old vassal was retired: see the note printed);
* deploy after a requirements change (``six`` added, plus a small wheel of the run's own, from a
  local ``--find-links`` folder, so each run is a new venue); its wheels are pre-built into the
  workstation's cache before timing;
* warm redeploy of a one-line change in a project that also holds 1 MiB of other files: only
  the changed file goes up, against the tree of the previous release already on the host;
* first deploy of a second act of the same source (same revision): the host has the tree, so
  only the act's env file goes up (and its venue is the first act's).

Columns: median wall seconds (min-max), remote commands per host, KiB sent per host (command
text plus stdin, as the transport counts them), and the median seconds of each remote
step (the probe, then the plan's steps: whether a venue was built shows here).

Run as root: ``.venv/bin/python bench/deploy.py [--runs N]`` (about 3 minutes with 3 runs).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchlib import (
    edit,
    fresh_fleet,
    machine,
    median,
    per_host,
    step_times,
    table,
    timed,
)

from backstage.artefacts.locks import resolve_pins
from backstage.artefacts.platforms import Platform
from backstage.model.inventory import load_production
from backstage.remote.hostside import platform_facts
from tests.support.testbed import make_stage, make_wheel

PREFIX = "bsbench"
PRODUCTION = "bench"
HOST = "h1"
HOME = "greetings/templates/greetings/home.html"
BLOB = "bench_blob/blob.bin"


def retired(stage) -> None:
    """Wait until only the live release's vassal is enabled (the old one retires after ~1 s)."""
    deadline = time.monotonic() + 15
    vassals = f"/srv/backstage/{PRODUCTION}/vassals"
    while time.monotonic() < deadline:
        names = stage.fleet.run(HOST, ["ls", vassals]).stdout.split()
        if sum(name.endswith(".ini") for name in names) == 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"old vassal not retired: {names}")


def prebuild_wheels(stage) -> None:
    """Fetch the venue's wheels for the host's platform (this machine's) into the workstation
    cache, as the deploy will ask for them."""
    pins = resolve_pins(load_production(stage.inventory).venues["storefront"].requirements)
    pins.for_platform(Platform.from_probe(platform_facts()), build=None)


def add_act(stage, name: str, port: int) -> None:
    """Another act of the same source and venue, served on its own HTTP port (and, as it
    shares storefront's sqlite files, run by storefront's unix user)."""
    text = stage.inventory.read_text()
    table = text[text.index("[acts.storefront]"):text.index("[databases.")]
    table = table.replace("[acts.storefront]", f"[acts.{name}]")
    stage.inventory.write_text(text + "\n" + table + f"http_port = {port}\n"
                               f'user = "bs-{PRODUCTION}-storefront"\n')


def row(label: str, runs, note: str = "") -> list[str]:
    seconds = [r.seconds for r in runs]
    return [label, f"{median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
            per_host(runs, "commands"), per_host(runs, "kib"), step_times(runs), note]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    n = parser.parse_args().runs
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), PRODUCTION, {HOST: 'roles = ["web"]'}, prefix=PREFIX)
        try:
            setups, colds = [], []
            for i in range(n):
                if i:
                    fresh_fleet(stage, [HOST], PREFIX)
                setups.append(timed(stage, "setup-stage"))
                colds.append(timed(stage, "deploy-act", "storefront"))
            rows.append(row("setup-stage, new host", setups))
            rows.append(row("cold deploy (after setup-stage)", colds))

            warms, noops, rollbacks = [], [], []
            for i in range(n):
                edit(stage, HOME, "<h1>", f"<h1>Run {i} ")
                warms.append(timed(stage, "deploy-act", "storefront"))
                noops.append(timed(stage, "deploy-act", "storefront"))
                retired(stage)
                rollbacks.append(timed(stage, "rollback", "storefront"))
                retired(stage)
            rows.append(row("warm redeploy, 1-line change", warms, "requirements unchanged"))
            rows.append(row("no-op deploy (same code)", noops))
            rows.append(row("rollback", rollbacks))

            listed = stage.source / "requirements.txt"
            original = listed.read_text()
            changed = []
            for i in range(n):
                make_wheel(stage.work / "variants", f"bench-variant-{i}", "1.0")
                listed.write_text(f"{original}six\n--find-links {stage.work / 'variants'}\n"
                                  f"bench-variant-{i}==1.0\n")
                prebuild_wheels(stage)
                changed.append(timed(stage, "deploy-act", "storefront"))
                retired(stage)
            listed.write_text(original)
            stage.cli("deploy-act", "storefront")  # back on the first venue: a switch, no build
            retired(stage)
            rows.append(row("deploy, requirements changed", changed,
                            "+six; wheels pre-built on the workstation"))

            blob = stage.source / BLOB
            blob.parent.mkdir()
            blob.write_bytes(os.urandom(1024 * 1024))
            stage.cli("deploy-act", "storefront")
            retired(stage)
            bigs = []
            for i in range(n):
                edit(stage, HOME, "<h1>", f"<h1>Big {i} ")
                bigs.append(timed(stage, "deploy-act", "storefront"))
                retired(stage)
            rows.append(row("warm redeploy, 1-line change, +1 MiB project", bigs,
                            "1 MiB random file untouched: a delta"))
            served = stage.page()
            assert served[0] == 200 and "Big" in served[1], served

            seconds = []
            for i in range(n):
                add_act(stage, f"second{i}", 9100 + i)
                seconds.append(timed(stage, "deploy-act", f"second{i}"))
            rows.append(row("second act, same revision (first deploy)", seconds,
                            "tree on the host: env file only"))
        finally:
            stage.fleet.stop()

    header = ["scenario", "median s (min-max)", "cmds/host", "KiB sent/host", "median s per step",
              "note"]
    print(table(header, rows))
    print(f"\n{n} runs per row, one fleet host, `backstage ... --verbose` in a subprocess "
          "(wall time includes CLI start).")
    print("Wheels (uWSGI, Django and its deps, six) come from the workstation's warm cache "
          "(~/.cache/backstage); hosts install them with --no-index and have no network beyond "
          "their own loopback, so a venue build that succeeds contacted no index.")
    print("Rollback runs after the old vassal was retired: right after a deploy the previous "
          "release is not yet revivable (its vassal retires ~1 s later in the background).")
    warm, noop = rows[2], rows[3]
    print(f"\nacceptance: no-op <= 2 commands/host: {noop[2]}; warm <= 6 commands/host: {warm[2]}; "
          f"warm KiB/host {warm[3]} vs with +1 MiB project {rows[-2][3]}")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
