"""``plan`` and ``deploy-act --dry-run`` on a real fleet host: what they show, and that they
change nothing there (no lock, no file, no helper, no history line)."""

import json
import re

import pytest

from tests.support.deploying import deployed, settled
from tests.support.testbed import REPO

pytestmark = pytest.mark.fleet
PRODUCTION = "pl"
ROOT = f"/srv/backstage/{PRODUCTION}"
GIG = f"/etc/nginx/sites-enabled/backstage-{PRODUCTION}-shop.conf"
TEMPLATES = REPO / "templates"

# Run inside the host: every path under the given roots with its type, mode, owner, mtime and
# content hash (or link target). Sockets and all are included: nothing may change.
SNAPSHOT = r"""
import hashlib, json, os, sys
found = {}
for root in sys.argv[1:]:
    for top, dirs, files in os.walk(root):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            st = os.lstat(name)
            entry = [st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_size]
            if os.path.islink(name):
                entry.append(os.readlink(name))
            elif os.path.isfile(name):
                entry.append(hashlib.sha256(open(name, "rb").read()).hexdigest())
            found[name] = entry
print(json.dumps(found, sort_keys=True))
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("plan"), PRODUCTION) as stage:
        yield stage


def snapshot(stage) -> dict:
    out = stage.fleet.run("h1", ["python3", "-c", SNAPSHOT, ROOT, "/etc/nginx/sites-enabled"])
    return json.loads(out.stdout)


def override(stage, name: str, old: str, new: str) -> None:
    folder = stage.work / "templates"
    folder.mkdir(exist_ok=True)
    text = (TEMPLATES / name).read_text()
    assert old in text
    (folder / name).write_text(text.replace(old, new, 1))


def test_unchanged_act_plans_no_changes(stage):
    live = settled(stage, PRODUCTION)
    before = snapshot(stage)
    for args in (("plan", "storefront"), ("deploy-act", "storefront", "--dry-run")):
        done = stage.cli(*args)
        assert done.stdout == f"h1: storefront: no changes (release {live} is live)\n"
    assert snapshot(stage) == before


def test_changed_templates_show_diffs_and_change_nothing(stage):
    live = settled(stage, PRODUCTION)
    override(stage, "gig.conf.j2", "# Gig ", "# planned gig change\n# Gig ")
    override(stage, "vassal.ini.j2", "master = true", "master = true\n; planned vassal change")
    helpers = stage.fleet.run("h1", f"ls {ROOT}/stage/hostside-*.py").stdout.split()
    assert len(helpers) == 1
    # Without the helper installed, plan must send it inline rather than install it.
    stage.fleet.run("h1", ["rm", helpers[0]])
    before = snapshot(stage)
    history = stage.fleet.run("h1", ["cat", f"{ROOT}/state/history.jsonl"]).stdout

    planned = stage.cli("plan", "storefront", "--verbose")
    dry = stage.cli("deploy-act", "storefront", "--dry-run")

    assert snapshot(stage) == before
    assert stage.fleet.run("h1", ["cat", f"{ROOT}/state/history.jsonl"]).stdout == history
    for out in (planned.stdout, dry.stdout):
        assert out.startswith("h1: storefront: changes\n"), out
        new = re.search(r"^  release  new (\S+) \(live: (\S+)\)$", out, re.MULTILINE)
        assert new and new.group(2) == live and new.group(1) != live
        assert "  venue    reuse the built venue\n" in out
        assert "  env file unchanged\n" in out
        assert f"  write    {GIG}\n" in out
        assert f"--- {GIG}\n+++ {GIG}\n" in out
        assert "+# planned gig change\n" in out
        vassals = f"{ROOT}/vassals/storefront@"
        assert f"--- {vassals}{live}.ini\n+++ {vassals}{new.group(1)}.ini\n" in out
        assert "+; planned vassal change\n" in out
        assert f"  retire   storefront@{live}\n" in out
        assert "DJANGO_SECRET_KEY" not in out and "test-secret-key" not in out
    # Read-only: the inline probe, one read of the two files, and the new code asked about
    # its migrations (in a scratch copy, gone after: the snapshot above), nothing else.
    assert re.search(r"^h1\s+4 remote commands", planned.stderr, re.MULTILINE), planned.stderr
    assert "  migrate  users: no migrations to apply\n" in planned.stdout

    stage.cli("deploy-act", "storefront")
    gig = stage.fleet.run("h1", ["cat", GIG]).stdout
    assert gig.startswith("# planned gig change\n")
    new_live = settled(stage, PRODUCTION)
    vassal = stage.fleet.run("h1", ["cat", f"{ROOT}/vassals/storefront@{new_live}.ini"]).stdout
    assert "; planned vassal change\n" in vassal
    assert stage.cli("plan", "storefront").stdout == \
        f"h1: storefront: no changes (release {new_live} is live)\n"


def test_plan_reports_a_held_lock_and_an_env_change_without_the_secret(stage):
    settled(stage, PRODUCTION)
    stage.cli("lock", "--message", "maintenance")
    try:
        secrets = stage.work / "secrets.env"
        secrets.write_text(secrets.read_text() + "PLANNED_TOKEN=hunter2-planned\n")
        before = snapshot(stage)
        out = stage.cli("plan", "storefront").stdout
        assert snapshot(stage) == before
        assert "  env file changed (content not shown)\n" in out
        assert "hunter2" not in out and "PLANNED_TOKEN" not in out
        assert re.search(r"^  lock     held by \S+ \(lock, .*\): a deploy would be refused now$",
                         out, re.MULTILINE), out
        refused = stage.cli("deploy-act", "storefront", check=False)
        assert refused.returncode != 0 and "lock" in refused.stderr
    finally:
        stage.cli("unlock")
