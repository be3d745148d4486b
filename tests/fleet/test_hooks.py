"""An act's hooks and the production's notifications on a real fleet host: each hook runs
where it should with the deploy's ``BACKSTAGE_*`` variables (host hooks as the act, with its
secrets, in the new release); a failing hook before the switch stops the rollout with the old
release serving, one after it is reported and the switch kept. A webhook receiver on loopback
gets one document per deploy, rollback and maintenance change; a dead one fails nothing."""

import json
import re

import pytest

from tests.support.deploying import make_stage, settled
from tests.support.testbed import SECRET_KEY
from tests.support.webhooks import Receiver, dead_url

pytestmark = pytest.mark.fleet
PRODUCTION = "hk"
ROOT = f"/srv/backstage/{PRODUCTION}"
SHARED = f"{ROOT}/acts/storefront/shared"
USER = f"bs-{PRODUCTION}-storefront"
HOME = "greetings/templates/greetings/home.html"
# Each hook writes its BACKSTAGE_* variables to <hook>.env, unless a fail-<hook> file exists.
RECORD = ('[ ! -e {where}/fail-{hook} ] || exit 3; '
          'env | grep ^BACKSTAGE_ | sort > {where}/{hook}.env')
HOST_EXTRA = ('; id -u > {where}/{hook}.uid; pwd > {where}/{hook}.cwd; '
              'printf %s "$DJANGO_SECRET_KEY" > {where}/{hook}.secret')


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def stage(tmp_path_factory, receiver):
    stage = make_stage(tmp_path_factory.mktemp("hk"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        lines = [f"[notify]\nwebhooks = {json.dumps([dead_url(), receiver.url()])}",
                 "retries = 1\ntimeout = 2\n", "[acts.storefront.hooks]"]
        for hook in ("before_deploy", "after_deploy", "after_rollback"):
            lines.append(f"{hook} = {json.dumps(RECORD.format(where=stage.work, hook=hook))}")
        for hook in ("after_prepare", "before_switch", "after_switch"):
            command = (RECORD + HOST_EXTRA).format(where=SHARED, hook=hook)
            lines.append(f"{hook} = {json.dumps(command)}")
        with stage.inventory.open("a") as inventory:
            inventory.write("\n" + "\n".join(lines) + "\n")
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def variables(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def local(stage, hook: str) -> dict[str, str]:
    return variables((stage.work / f"{hook}.env").read_text())


def on_host(stage, name: str) -> str:
    return stage.fleet.run("h1", ["cat", f"{SHARED}/{name}"]).stdout


def new_code(stage, heading: str) -> None:
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{heading}</h1>", path.read_text()))


def last_history(stage) -> dict:
    return json.loads(stage.cli("history", "--json").stdout.splitlines()[0])


def test_every_hook_runs_where_it_should_with_the_deploys_variables(stage):
    before = settled(stage, PRODUCTION)
    new_code(stage, "Hooked")
    stage.cli("deploy-act", "storefront")
    after = settled(stage, PRODUCTION)
    expected = {"BACKSTAGE_PRODUCTION": PRODUCTION, "BACKSTAGE_ACT": "storefront",
                "BACKSTAGE_RELEASE": after, "BACKSTAGE_PREVIOUS_RELEASE": before,
                "BACKSTAGE_HOSTS": "h1"}
    assert local(stage, "before_deploy") == {**expected, "BACKSTAGE_PREVIOUS_RELEASE": ""}
    done = local(stage, "after_deploy")
    assert done.pop("BACKSTAGE_OUTCOME") == "deployed" and float(done.pop("BACKSTAGE_DURATION")) > 0
    assert done == expected
    uid = stage.fleet.run("h1", ["id", "-u", USER]).stdout
    for hook in ("after_prepare", "before_switch", "after_switch"):
        assert {k: v for k, v in variables(on_host(stage, f"{hook}.env")).items()
                if k in expected} == expected, hook
        assert on_host(stage, f"{hook}.uid") == uid  # as the act's user
        # In the new release (where the act runs from), not the live one.
        assert on_host(stage, f"{hook}.cwd").strip() == f"{ROOT}/acts/storefront/releases/{after}"
        assert on_host(stage, f"{hook}.secret") == SECRET_KEY  # its secrets, as the act has them


def test_a_failing_before_switch_hook_leaves_the_old_release_serving(stage):
    live = settled(stage, PRODUCTION)
    stage.fleet.run("h1", ["touch", f"{SHARED}/fail-before_switch"])
    try:
        new_code(stage, "Never served")
        done = stage.cli("deploy-act", "storefront", check=False)
    finally:
        stage.fleet.run("h1", ["rm", f"{SHARED}/fail-before_switch"])
    assert done.returncode == 1
    assert "step 'before_switch hook' failed" in done.stderr and "exit 3" in done.stderr
    assert settled(stage, PRODUCTION) == live
    status, body = stage.page("/")
    assert status == 200 and "Never served" not in body
    failed = [json.loads(line) for line in stage.cli("history", "--json").stdout.splitlines()
              if '"hook failed"' in line]
    assert failed[0]["hook"] == "before_switch" and failed[0]["act"] == "storefront"
    assert local(stage, "after_deploy")["BACKSTAGE_OUTCOME"] == "failed"


def test_a_failing_after_switch_hook_is_reported_and_the_switch_kept(stage):
    live = settled(stage, PRODUCTION)
    stage.fleet.run("h1", ["touch", f"{SHARED}/fail-after_switch"])
    try:
        new_code(stage, "Kept")
        done = stage.cli("deploy-act", "storefront")
    finally:
        stage.fleet.run("h1", ["rm", f"{SHARED}/fail-after_switch"])
    assert "after_switch hook: skipped (it failed, exit 3; the switch is kept)" in done.stderr
    assert settled(stage, PRODUCTION) != live
    assert "<h1>Kept</h1>" in stage.page("/")[1]
    assert (last_history(stage)["event"], last_history(stage)["hook"]) == \
        ("hook failed", "after_switch")


def test_after_rollback_gets_the_outcome(stage):
    live = settled(stage, PRODUCTION)
    stage.cli("rollback", "storefront")
    got = local(stage, "after_rollback")
    assert got["BACKSTAGE_OUTCOME"] == "rolled back"
    assert got["BACKSTAGE_PREVIOUS_RELEASE"] == live
    assert got["BACKSTAGE_RELEASE"] == settled(stage, PRODUCTION)


def test_a_failing_before_deploy_hook_changes_nothing(stage):
    live = settled(stage, PRODUCTION)
    (stage.work / "fail-before_deploy").touch()
    try:
        new_code(stage, "Not even prepared")
        done = stage.cli("deploy-act", "storefront", check=False)
    finally:
        (stage.work / "fail-before_deploy").unlink()
    assert done.returncode == 1 and "the before_deploy hook of storefront failed" in done.stderr
    assert settled(stage, PRODUCTION) == live


def test_webhooks_get_one_document_per_deploy_rollback_and_maintenance_change(stage, receiver):
    deploys = [b for b in receiver.bodies if b["event"] == "deploy"]
    # The fixture's, and three here (one failed); none for the one its before_deploy refused.
    assert [d["outcome"] for d in deploys] == ["deployed", "deployed", "failed", "deployed"]
    first = deploys[1]
    assert {"production": PRODUCTION, "act": "storefront", "hosts": ["h1"]}.items() \
        <= first.items()
    assert first["release"] and first["previous"] and first["by"] and first["time"]
    assert first["duration"] > 0
    assert [b["outcome"] for b in receiver.bodies if b["event"] == "rollback"] == ["rolled back"]
    done = stage.cli("maintenance", "on", "storefront")
    stage.cli("maintenance", "off", "storefront")
    assert [b["maintenance"] for b in receiver.bodies if b["event"] == "maintenance"] == \
        ["on", "off"]
    # The dead webhook was reported, its token never shown, and failed nothing.
    assert "failed (ConnectionError, 2 attempts)" in done.stderr and "s3cr3t" not in done.stderr
