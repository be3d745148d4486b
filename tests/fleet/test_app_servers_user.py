"""gunicorn and granian in the user layout (issue 20): no root anywhere, so the launcher binds
the release's socket as the deploy user and drops nothing; nginx (the user's own) proxies to
it."""

import pytest

from tests.fleet.test_app_servers import use_server
from tests.support.deploying import make_stage, processes

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    host = 'user = "deploy"\nlayout = "user"\nroot = "/home/deploy/stage"\nhttp_port = 8080'
    stage = make_stage(tmp_path_factory.mktemp("usersrv"), "solosrv", {"h1": host},
                       users=("deploy",))
    try:
        stage.cli("setup-stage")
        yield stage
    finally:
        stage.fleet.stop()


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_a_server_in_the_user_layout_serves_and_restarts_as_the_deploy_user(stage, server):
    use_server(stage, server)
    stage.cli("deploy-act", "storefront")
    status, body = stage.page("/", port=8080)
    assert status == 200 and "Welcome to the storefront" in body, body
    stage.cli("restart", "storefront")
    assert stage.page("/", port=8080)[0] == 200
    served = processes(stage, "h1", "serverside.py serve")
    owners = stage.fleet.run("h1", ["ps", "-o", "user=", "-p",
                                    ",".join(p.split()[0] for p in served)]).stdout.split()
    assert owners and set(owners) == {"deploy"}, owners
