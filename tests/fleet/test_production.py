"""The Python API on real hosts: ``Production`` sets up, plans, deploys, rolls back and reads
status without a terminal (nothing printed), and the program's ``--json`` is the report's
``as_dict()`` of the same call made through the API.

Timing fields differ between two runs of the same call and are compared by their keys only:
a rollout's per-phase ``durations`` and ``started``, a vassal's ``uptime``, and the ``release``
a no-op deploy would have made (its id holds the time it was packed).
"""

import json
import time

import pytest

from backstage import Production
from backstage.model import release_of_link
from backstage.reports import PlanReport, RollbackReport, RolloutReport, StatusReport

pytestmark = pytest.mark.fleet

HOSTS = {"h1": 'roles = ["web"]', "h2": 'roles = ["web"]'}


def rollout_stable(document: dict) -> dict:
    """A rollout document without what differs between two runs of the same call."""
    hosts = {h: {**o, "durations": sorted(o["durations"]), "started": sorted(o["started"])}
             for h, o in document["hosts"].items()}
    return {**document, "release": None, "hosts": hosts}


def without_uptime(value):
    if isinstance(value, dict):
        return {k: without_uptime(v) for k, v in value.items() if k != "uptime"}
    if isinstance(value, list):
        return [without_uptime(v) for v in value]
    return value


def wait_retired(stage, host: str, release: str) -> None:
    """Until the vassal a deploy retires in the background (after a grace period) is gone: a
    rollback that revives it while it is still stopping can find it gone after the switch
    (seen once: 502 right after the rollback), which is not what this test is about."""
    log = "/srv/backstage/api/log/emperor.log"
    done = f"removed uwsgi instance storefront@{release}.ini"
    deadline = time.monotonic() + 60
    while done not in stage.fleet.run(host, ["cat", log]).stdout:
        assert time.monotonic() < deadline, f"{host}: {release} was not retired"
        time.sleep(0.2)


def cli_json(stage, *args) -> dict:
    return json.loads(stage.cli(*args, "--json").stdout)


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    from tests.support.deploying import make_stage

    stage = make_stage(tmp_path_factory.mktemp("api"), "api", HOSTS)
    try:
        yield stage
    finally:
        stage.fleet.stop()


def test_the_api_deploys_plans_rolls_back_and_reads_status_silently(stage, capfd):
    p = Production.load(stage.inventory)
    assert p.setup_stage().exit_code == 0

    plan = p.plan("storefront")
    assert isinstance(plan, PlanReport) and plan.exit_code == 0
    assert [line for line in plan.text.splitlines() if not line.startswith(" ")][:1] == \
        ["h1: storefront: changes"]
    assert set(plan.as_dict()["hosts"]) == {"h1", "h2"}

    first = p.deploy("storefront", serial=1)
    assert isinstance(first, RolloutReport) and first.exit_code == 0, first.as_dict()
    assert first.batches == [["h1"], ["h2"]]
    assert {o.result for o in first.outcomes.values()} == {"deployed"}
    assert stage.page("/", host="h2")[0] == 200

    (stage.source / "storefront" / "api_marker.py").write_text("MARK = 1\n")
    second = p.deploy("storefront")
    assert second.exit_code == 0 and second.release != first.release
    for host in HOSTS:
        wait_retired(stage, host, first.release)

    back = p.rollback("storefront")
    assert isinstance(back, RollbackReport) and back.exit_code == 0
    assert back.as_dict()["hosts"] == {h: {"release": first.release, "previous": second.release,
                                              "schema": None}
                                       for h in HOSTS}
    status = p.status("storefront")
    assert isinstance(status, StatusReport) and status.exit_code == 0
    for host in HOSTS:
        assert release_of_link(status.as_dict()[host]["storefront"]["live"]) == first.release
    assert stage.page("/", host="h1")[0] == 200

    assert capfd.readouterr() == ("", "")  # no progress, no table: nothing without a terminal


def test_the_programs_json_is_the_reports_as_dict(stage):
    p = Production.load(stage.inventory)
    # The source as it is now is live (a no-op after the test above): both deploys below
    # change nothing, so they can be compared.
    assert p.setup_stage().exit_code == 0 and p.deploy("storefront").exit_code == 0

    from_cli = cli_json(stage, "deploy-act", "storefront")
    report = p.deploy("storefront")
    assert {o["result"] for o in from_cli["hosts"].values()} == {"unchanged"}
    assert rollout_stable(from_cli) == rollout_stable(report.as_dict())

    assert without_uptime(cli_json(stage, "status")) == without_uptime(p.status().as_dict())
    assert without_uptime(cli_json(stage, "status", "--act", "storefront", "--hosts", "h2")) == \
        without_uptime(p.status("storefront", hosts="h2").as_dict())

    lines = stage.cli("history", "--json", "--limit", "50").stdout.splitlines()
    entries = p.history(limit=50).as_dict()["entries"]
    assert [json.loads(line) for line in lines] == entries and len(entries) >= 2

    # plan has no --json: what it prints is the report's text (here: no changes, so stable).
    assert stage.cli("plan", "storefront").stdout == p.plan("storefront").text
    assert stage.cli("deploy-act", "storefront", "--dry-run").stdout == \
        p.deploy("storefront", dry_run=True).text
