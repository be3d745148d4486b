"""The storefront act on each application server (issue 20): uWSGI, gunicorn and granian.

One namespace host for the module. Each server serves the page and a static file, redeploys,
rolls back, stops, starts, restarts and shows its pids in ``status``; switching between
servers is an ordinary deploy with no failed request under load; a release whose app cannot
be imported is refused at the health step with the server's own error, the old one serving.
"""

import json
import re
import time

import pytest

from tests.support.deploying import Load, make_stage, processes, settled

pytestmark = pytest.mark.fleet

PRODUCTION = "servers"
ROOT = f"/srv/backstage/{PRODUCTION}"
USER = "bs-servers-storefront"
HOME = "greetings/templates/greetings/home.html"
WSGI = "storefront/wsgi.py"
HEALTH_LINE = 'health = { path = "/healthz" }'


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("servers"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        yield stage
    finally:
        stage.fleet.stop()


def use_server(stage, server: str, options: str = "") -> None:
    """Make the inventory's act run on ``server`` (with an options table's body)."""
    original = stage.work / "original.toml"
    if not original.exists():
        original.write_text(stage.inventory.read_text())
    table = f"\n[acts.storefront.{server}]\n{options}\n" if options else ""
    stage.inventory.write_text(original.read_text().replace(
        HEALTH_LINE, f'{HEALTH_LINE}\nserver = "{server}"{table}', 1))


def edit(stage, relative: str, old: str, new: str) -> None:
    path = stage.source / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))


def heading(stage) -> str:
    status, body = stage.page("/")
    assert status == 200, body
    return re.search(r"<h1>(.*?)</h1>", body).group(1)


def live_sess(stage) -> dict:
    act = json.loads(stage.cli("status", "--json").stdout)["h1"]["storefront"]
    return next(s for s in act["sesses"] if s["release"] == act["current"].rsplit("/", 1)[1])


def assert_no_failed_request(result: dict) -> None:
    assert result["requests"] > 0
    assert result["socket_errors"] == 0, result
    assert result["non_2xx"] == 0, result


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_each_server_serves_redeploys_rolls_back_stops_starts_and_restarts(stage, server):
    use_server(stage, server, "graceful_timeout = 5")
    stage.cli("deploy-act", "storefront")
    first = settled(stage, PRODUCTION)
    assert heading(stage)
    status, css = stage.page("/static/greetings/style.css")
    assert status == 200 and css, css
    # The server runs as the act's user, started by the launcher; uWSGI runs no worker.
    running = processes(stage, "h1", "serverside.py serve")
    assert running and all(line.split()[0].isdigit() for line in running)
    owners = stage.fleet.run("h1", ["ps", "-o", "user=", "-C", "python"]).stdout.split()
    assert USER in owners

    edit(stage, HOME, heading(stage), f"On {server}")
    stage.cli("deploy-act", "storefront")
    second = settled(stage, PRODUCTION)
    assert second != first and heading(stage) == f"On {server}"

    stage.cli("rollback", "storefront")
    assert settled(stage, PRODUCTION) == first and heading(stage) != f"On {server}"
    stage.cli("deploy-act", "storefront")
    assert heading(stage) == f"On {server}"

    sess = live_sess(stage)
    assert sess["master"] and len(sess["workers"]) >= 3 and sess["uptime"] is not None, sess
    stage.cli("restart", "storefront")
    after = live_sess(stage)
    assert after["master"] == sess["master"] and after["workers"][0] == sess["workers"][0]
    assert not set(after["workers"][1:]) & set(sess["workers"][1:]), (sess, after)
    assert heading(stage) == f"On {server}"

    stage.cli("stop", "storefront")
    assert stage.page("/")[0] == 502
    assert gone(stage)
    stage.cli("start", "storefront")
    assert heading(stage) == f"On {server}"


def gone(stage) -> bool:
    """Whether no server runs any more: ``stop`` waits until the socket is closed, the
    server's last processes exit a moment later."""
    deadline = time.monotonic() + 10
    while processes(stage, "h1", "serverside.py serve") and time.monotonic() < deadline:
        time.sleep(0.1)
    return not processes(stage, "h1", "serverside.py serve")


def test_a_stopped_act_moved_to_another_server_deploys_a_release_on_its_new_venue(stage):
    """Not a repair of the stopped release: that builds no venue, and the server's is new."""
    use_server(stage, "gunicorn")
    stage.cli("deploy-act", "storefront")
    settled(stage, PRODUCTION)
    stage.cli("stop", "storefront")
    use_server(stage, "granian")
    stage.cli("deploy-act", "storefront")
    release = settled(stage, PRODUCTION)
    assert heading(stage)
    vassal = stage.fleet.run("h1", ["cat", f"{ROOT}/vassals/storefront@{release}.ini"]).stdout
    assert "granian (wsgi)" in vassal


def test_switching_from_uwsgi_to_gunicorn_and_back_drops_no_request(stage):
    use_server(stage, "uwsgi")
    stage.cli("deploy-act", "storefront")
    settled(stage, PRODUCTION)
    for server in ("gunicorn", "uwsgi", "granian", "uwsgi"):
        use_server(stage, server)
        load = Load(stage)
        stage.cli("deploy-act", "storefront")
        assert_no_failed_request(load.finish())
        settled(stage, PRODUCTION)
    assert gone(stage)


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_a_release_whose_app_fails_to_import_is_refused_at_health(stage, server):
    use_server(stage, server)
    stage.cli("deploy-act", "storefront")
    live = settled(stage, PRODUCTION)
    edit(stage, WSGI, "import os\n", "import os\nimport no_such_server_module  # noqa\n")
    try:
        load = Load(stage)
        done = stage.cli("deploy-act", "storefront", check=False)
        assert_no_failed_request(load.finish())
    finally:
        edit(stage, WSGI, "import no_such_server_module  # noqa\n", "")
    assert done.returncode == 1, done.stderr
    assert "step 'health' failed" in done.stderr, done.stderr
    assert "ModuleNotFoundError: No module named 'no_such_server_module'" in done.stderr
    assert settled(stage, PRODUCTION) == live
    assert heading(stage)


def test_the_socket_folder_stays_roots_and_the_act_cannot_move_nginx(stage):
    """The server binds nothing itself: its socket is root's folder's, given to the act."""
    use_server(stage, "gunicorn")
    stage.cli("deploy-act", "storefront")
    release = settled(stage, PRODUCTION)
    listing = stage.fleet.run("h1", ["stat", "-c", "%U %G %a %n", f"{ROOT}/run/storefront",
                                     f"{ROOT}/run/storefront/{release}.sock",
                                     f"{ROOT}/run/storefront/{release}.http"]).stdout.split("\n")
    assert listing[0].split()[0] == "root"
    assert listing[1].split()[:3] == [USER, "www-data", "660"], listing
    assert listing[2].split()[0] == "root"
    planted = stage.fleet.run("h1", ["su", "-s", "/bin/sh", USER, "-c",
                                     f"ln -s /tmp/x {ROOT}/run/storefront/planted.sock"],
                              check=False)
    assert planted.returncode != 0
    assert stage.fleet.run("h1", ["pgrep", "-u", USER, "-f", "serverside.py serve"]).stdout


def test_granian_runs_the_act_over_asgi(stage):
    """``interface = "asgi"``: granian loads ``storefront.asgi:application`` (the default
    beside the settings); Django's sync views answer through it, behind nginx."""
    use_server(stage, "granian")
    stage.inventory.write_text(stage.inventory.read_text().replace(
        'server = "granian"', 'server = "granian"\ninterface = "asgi"', 1))
    stage.cli("deploy-act", "storefront")
    release = settled(stage, PRODUCTION)
    assert heading(stage)
    assert stage.page("/static/greetings/style.css")[0] == 200
    vassal = stage.fleet.run("h1", ["cat", f"{ROOT}/vassals/storefront@{release}.ini"]).stdout
    assert "granian (asgi)" in vassal
