"""Locks per act (issue 12, finding 11): two acts of one production deploy side by side, two
deploys of one act exclude each other, and two acts whose deploys migrate one database exclude
each other too. On a real fleet host, with two acts of the example's source sharing a venue
(so their deploys build one venue, and make one source tree, at the same time). The lock
commands on this machine are tests/test_locks.py."""

import json
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.support.deploying import make_stage
from tests.support.testbed import make_wheel

pytestmark = pytest.mark.fleet
PRODUCTION = "locks"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOME = "greetings/templates/greetings/home.html"
SECOND = "second.example.test"
TRIALS = 5
# The sqlite databases are migrated by storefront's deploys only: second's migrate nothing.
DATABASES = ('[databases.users]\nmigrate_with = "storefront"\n\n'
             '[databases.greetings]\nmigrate_with = "storefront"\n')


@dataclass
class Run:
    pid: int
    returncode: int
    stderr: str


def at_once(stage, *acts: str) -> list[Run]:
    """Start ``deploy-act`` for each act at the same moment; wait for all."""
    started = [subprocess.Popen([sys.executable, "-m", "backstage", "deploy-act", act,
                                 "--inventory", str(stage.inventory)], cwd=stage.work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for act in acts]
    return [Run(p.pid, p.wait(timeout=600), p.stderr.read()) for p in started]


def heading(stage, act: str) -> str:
    """The heading an act's home page shows, through its gig."""
    status, body = stage.page("/") if act == "storefront" else \
        stage.fleet.http("h1", "/", host_header=SECOND)
    assert status == 200, body
    return re.search(r"<h1>(.*?)</h1>", body).group(1)


def new_heading(stage, text: str) -> None:
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{text}</h1>", path.read_text()))


def new_requirement(stage, name: str) -> None:
    """A new wheel in the venue: both acts' deploys build the new venue."""
    wheels = stage.work / "wheels"
    make_wheel(wheels, name, "1.0")
    with (stage.source / "requirements.txt").open("a") as f:
        f.write(f"--find-links {wheels}\n{name}==1.0\n")


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """storefront and second, each with a gig, of one source, one venue and one unix user (they
    share the sqlite files), both deployed."""
    stage = make_stage(tmp_path_factory.mktemp("locks"), PRODUCTION, {"h1": 'roles = ["web"]'},
                       databases=DATABASES)
    try:
        text = stage.inventory.read_text()
        act = text[text.index("[acts.storefront]"):text.index("[databases.")]
        stage.inventory.write_text(
            text + "\n" + act.replace("[acts.storefront]", "[acts.second]")
            + f'user = "bs-{PRODUCTION}-storefront"\n\n'
            + f'[gigs.second]\nact = "second"\ndomains = ["{SECOND}"]\n')
        stage.pristine = stage.inventory.read_text()
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        stage.cli("deploy-act", "second")
        yield stage
    finally:
        stage.fleet.stop()


def test_two_acts_of_one_production_deploy_side_by_side(stage):
    """Five times: both acts deployed at the same moment both go live (twice with a new
    requirement, so both build the one venue they share at once)."""
    succeeded = 0
    for trial in range(TRIALS):
        new_heading(stage, f"Side by side {trial}")
        if trial in (0, 3):
            new_requirement(stage, f"marker-{trial}")
        runs = at_once(stage, "storefront", "second")
        for act, run in zip(("storefront", "second"), runs):
            assert run.returncode == 0, f"trial {trial}, {act}:\n{run.stderr}"
            assert heading(stage, act) == f"Side by side {trial}"
        succeeded += 1
    print(f"two acts at once: both deployed in {succeeded} of {TRIALS} trials")
    assert not stage.fleet.run("h1", f"ls -d {ROOT}/state/locks/*/*/", check=False).stdout


def refused_one(runs: list[Run], lock_name: str, holder_act: str) -> Run:
    """Exactly one run succeeded; the other was refused in one line naming the lock and the
    winner (by pid); returns the refused run."""
    won = [r for r in runs if r.returncode == 0]
    lost = [r for r in runs if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, [(r.returncode, r.stderr) for r in runs]
    pattern = (rf"h1: deploy lock held \(wait for it, or run 'unlock' if you are sure it is "
               rf"abandoned\): lock={lock_name}, by=\S+, pid={won[0].pid}, time=\S+, "
               rf"command=deploy-act, act={holder_act}$")
    assert re.search(pattern, lost[0].stderr, re.MULTILINE), lost[0].stderr
    assert lost[0].returncode == 1
    return lost[0]


def test_two_deploys_of_one_act_exclude_each_other(stage):
    for trial in range(3):
        new_heading(stage, f"One of two {trial}")
        refused_one(at_once(stage, "storefront", "storefront"), "act/storefront", "storefront")
        assert heading(stage, "storefront") == f"One of two {trial}"


def test_acts_migrating_one_database_exclude_each_other(stage):
    """Without migrate_with, both acts migrate users: their deploys lock it, so one waits."""
    stage.inventory.write_text(stage.pristine.replace(
        '[databases.users]\nmigrate_with = "storefront"\n', "[databases.users]\n"))
    try:
        new_heading(stage, "One database")
        runs = at_once(stage, "storefront", "second")
        winner = "storefront" if runs[0].returncode == 0 else "second"
        refused_one(runs, "database/users", winner)
    finally:
        stage.inventory.write_text(stage.pristine)


def test_lock_and_unlock_one_act_or_all(stage):
    stage.cli("lock", "--act", "second", "--message", "maintenance of second")
    stage.cli("deploy-act", "storefront")  # another act's lock is not in the way
    refused = stage.cli("stop", "second", check=False)
    assert refused.returncode == 1
    assert "lock=act/second" in refused.stderr and "maintenance of second" in refused.stderr
    assert "unlocked (lock of" in stage.cli("unlock", "--act", "second").stderr

    stage.cli("lock", "--message", "everything")
    for act in ("storefront", "second"):
        refused = stage.cli("deploy-act", act, check=False)
        assert refused.returncode == 1 and f"lock=act/{act}" in refused.stderr
    unlocked = stage.cli("unlock").stderr
    assert "unlocked (lock of" in unlocked and "act/second, act/storefront" in unlocked
    entries = [json.loads(line) for line in stage.cli("history", "--json").stdout.splitlines()]
    assert [e["event"] for e in entries[:3]] == ["unlock", "lock", "unlock"]
    assert entries[1]["locks"] == ["act/second", "act/storefront"]
    assert entries[0]["locks"] == entries[1]["locks"] and entries[0]["stale"] is False
