"""Foundation acceptance, on a real fleet host: setup-stage, deploy-act, sess tasks, redeploys.

One host is staged and the example act deployed once for the module; tests run in file order
and each leaves the act serving.
"""

import json
import re

import pytest

from tests.support.deploying import backstage, deployed, processes

pytestmark = pytest.mark.fleet
PRODUCTION = "foundation"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("foundation"), PRODUCTION) as stage:
        yield stage


def test_deployed_act_serves_page_and_static_file_through_nginx(stage):
    status, body = stage.page("/")
    assert status == 200
    assert "<h1>Welcome to the storefront</h1>" in body
    status, css = stage.page("/static/greetings/style.css")
    assert status == 200
    assert "{" in css  # a real stylesheet, not an HTML error page


def test_setup_stage_again_changes_nothing(stage):
    snapshot = ("find /srv/backstage /etc/nginx -printf '%p %T@ %s %m\\n' | sort; "
                f"cat /srv/backstage/{PRODUCTION}/run/emperor.pid /run/nginx.pid")
    before = stage.fleet.run("h1", snapshot).stdout
    done = stage.cli("setup-stage")
    assert "nothing to change" in done.stderr
    assert stage.fleet.run("h1", snapshot).stdout == before


def test_stop_start_restart(stage):
    stage.cli("stop", "storefront")
    assert stage.page("/")[0] == 502
    assert processes(stage, "h1", "storefront@") == []

    stage.cli("start", "storefront")
    assert stage.page("/")[0] == 200

    def workers():
        status = json.loads(stage.cli("status", "--json").stdout)
        (sess,) = status["h1"]["storefront"]["sesses"]
        return sess["workers"]

    before = workers()
    stage.cli("restart", "storefront")
    after = workers()
    assert before and after and not set(before) & set(after)
    assert stage.page("/")[0] == 200


def test_redeploy_serves_new_code_and_keeps_rows_in_both_databases(stage):
    assert json.loads(stage.post("/api/greet", "name=Ada")) == {"people": 1, "greetings": 1}
    home = stage.source / "greetings" / "templates" / "greetings" / "home.html"
    home.write_text(home.read_text().replace("Welcome to the storefront", "Welcome back"))
    done = stage.cli("deploy-act", "storefront")
    status, body = stage.page("/")
    assert status == 200
    assert "<h1>Welcome back</h1>" in body
    release = re.search(r"release (\S+)", done.stdout).group(1)
    assert f"release: {release}" in body
    assert re.search(r'id="people">1<', body) and re.search(r'id="greetings">1<', body)
    assert "Hello, Ada!" in body


def test_inventory_error_exits_2_with_one_line_and_touches_no_host(stage):
    broken = stage.inventory.with_name("broken.toml")
    broken.write_text(stage.inventory.read_text().replace("[databases.users]",
                                                          "[databases.users]\nengine2 = 1"))
    done = backstage("deploy-act", "storefront", "--inventory", str(broken), cwd=stage.work,
                     check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert str(broken) in done.stderr and "databases.users.engine2: unknown key" in done.stderr
    assert stage.fleet.run("h1", "ls /srv/backstage").stdout.split() == [PRODUCTION]


