"""``maintenance on|off`` on a real fleet host, in order: on (503, Retry-After and the page
through nginx under load, no reload), out of the act user's reach, kept through a deploy and a
rollback whose checks still reach the release, shown by ``status`` and ``history``, then off
(the new release serves)."""

import json
import re

import pytest

from tests.support.deploying import Load, deployed, settled

pytestmark = pytest.mark.fleet
PRODUCTION = "mnt"
ROOT = f"/srv/backstage/{PRODUCTION}"
USER = f"bs-{PRODUCTION}-storefront"
PAGE = f"{ROOT}/maintenance/storefront.html"
HOME = "greetings/templates/greetings/home.html"
MESSAGE = "Upgrading the <database>"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("mnt"), PRODUCTION) as stage:
        yield stage


def head(stage) -> tuple[int, dict, str]:
    """Status, headers (lower-case names) and body of ``/`` through nginx."""
    out = stage.fleet.run("h1", ["curl", "-sS", "-i", "--noproxy", "*", "-H",
                                 "Host: shop.example.test", "http://127.0.0.1/"]).stdout
    top, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = top.splitlines()
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def nginx_workers(stage) -> list[str]:
    out = stage.fleet.run("h1", ["pgrep", "-f", "nginx: worker"], check=False).stdout
    return sorted(out.split())


def only_maintenance(result: dict) -> None:
    """Every request of a load run got the maintenance 503, none a socket error."""
    assert result["requests"] > 0 and result["socket_errors"] == 0, result
    assert set(result["detail"]) == {"status 503"}, result


def test_maintenance_on_answers_503_with_retry_after_without_reload(stage):
    workers = nginx_workers(stage)
    done = stage.cli("maintenance", "on", "storefront", "--message", MESSAGE, "--json")
    assert json.loads(done.stdout)["hosts"]["h1"] == {"maintenance": "on", "gigs": []}
    status, headers, body = head(stage)
    assert status == 503 and headers["retry-after"] == "300", headers
    assert "Upgrading the &lt;database&gt;" in body and headers["content-type"] == "text/html"
    load = Load(stage, connections=50)
    only_maintenance(load.finish())
    assert nginx_workers(stage) == workers  # switched by a file, nginx was not reloaded


def test_the_act_user_cannot_switch_maintenance(stage):
    as_act = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"]
    removed = stage.fleet.run("h1", [*as_act, "rm", "-f", PAGE], check=False)
    made = stage.fleet.run("h1", [*as_act, "touch", f"{ROOT}/maintenance/other.html"],
                           check=False)
    assert removed.returncode != 0 and made.returncode != 0
    assert "Permission denied" in removed.stderr + made.stderr
    assert head(stage)[0] == 503


def test_a_deploy_during_maintenance_keeps_503_while_the_release_passes_its_checks(stage):
    before = settled(stage, PRODUCTION)
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", "<h1>After maintenance</h1>", path.read_text()))
    load = Load(stage, connections=50)
    done = stage.cli("deploy-act", "storefront")
    only_maintenance(load.finish())
    after = settled(stage, PRODUCTION)
    assert after != before, done.stderr
    assert head(stage)[0] == 503
    assert "health" in done.stderr  # checked through its own socket, then switched


def test_a_rollback_during_maintenance_keeps_503(stage):
    deployed = settled(stage, PRODUCTION)
    load = Load(stage, connections=20)
    stage.cli("rollback", "storefront")
    only_maintenance(load.finish())
    assert settled(stage, PRODUCTION) != deployed
    stage.cli("rollback", "storefront", "--to", deployed)
    assert head(stage)[0] == 503


def test_status_and_history_show_maintenance(stage):
    status = json.loads(stage.cli("status", "--json").stdout)
    shown = status["h1"]["storefront"]["maintenance"]
    assert shown["message"] == MESSAGE and shown["by"] and shown["time"]
    assert "storefront in maintenance since" in stage.cli("status").stdout
    lines = [json.loads(line) for line in stage.cli("history", "--json").stdout.splitlines()]
    assert {"event": "maintenance on", "act": "storefront", "message": MESSAGE}.items() \
        <= next(e for e in lines if e["event"] == "maintenance on").items()


def test_maintenance_off_serves_the_new_release(stage):
    workers = nginx_workers(stage)
    stage.cli("maintenance", "off", "storefront")
    status, _, body = head(stage)
    assert status == 200 and "<h1>After maintenance</h1>" in body
    assert nginx_workers(stage) == workers
    assert json.loads(stage.cli("status", "--json").stdout)["h1"]["storefront"][
        "maintenance"] is None
    assert json.loads(stage.cli("history", "--json").stdout.splitlines()[0])["event"] == \
        "maintenance off"


def test_bad_switch_is_one_line_and_changes_nothing(stage):
    done = stage.cli("maintenance", "sideways", "storefront", check=False)
    assert done.returncode == 2 and "say on or off" in done.stderr
    assert head(stage)[0] == 200
