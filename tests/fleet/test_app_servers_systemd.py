"""gunicorn and granian on a systemd host (issue 20): the Emperor, a systemd unit there,
supervises them as on namespace hosts (tests/fleet/test_app_servers.py), so deploy, restart,
stop and start are the same; the servers run in the Emperor unit's cgroup, as the act's
user."""

import pytest

from backstage.sandbox.images import Image
from tests.fleet.test_app_servers import heading, use_server
from tests.support.deploying import make_stage, settled

pytestmark = pytest.mark.fleet

PRODUCTION = "sdservers"
UNIT = f"backstage-{PRODUCTION}-emperor.service"
USER = f"bs-{PRODUCTION}-storefront"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("sdservers"), PRODUCTION,
                       {"h1": 'roles = ["web"]'}, image=Image("bookworm"))
    try:
        stage.fleet.add_apt_source("h1")
        stage.cli("setup-stage")
        yield stage
    finally:
        stage.fleet.stop()


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_a_server_under_the_emperor_unit_deploys_restarts_stops_and_starts(stage, server):
    use_server(stage, server)
    stage.cli("deploy-act", "storefront")
    settled(stage, PRODUCTION)
    assert heading(stage)
    tasks = stage.fleet.run("h1", f"systemctl show -p ControlGroup --value {UNIT}").stdout.strip()
    pids = stage.fleet.run("h1", f"cat /sys/fs/cgroup{tasks}/cgroup.procs 2>/dev/null || "
                                 f"cat /sys/fs/cgroup/unified{tasks}/cgroup.procs").stdout.split()
    uid = stage.fleet.run("h1", ["id", "-u", USER]).stdout.strip()
    owners = stage.fleet.run("h1", ["ps", "-o", "uid=,args=", "-p", ",".join(pids)]).stdout
    assert any(line.split()[0] == uid and "serverside.py serve" in line
               for line in owners.splitlines()), owners
    stage.cli("restart", "storefront")
    assert heading(stage)
    stage.cli("stop", "storefront")
    assert stage.page("/")[0] == 502
    stage.cli("start", "storefront")
    assert heading(stage)
