"""What is recorded as live must be live (issue 12, finding 13).

Each test breaks the live release on a real fleet host behind Backstage's back, the way a
disk clean-up, an operator or a crash would, and checks that the site's failure is seen:
``status`` says the act is broken and why, ``plan`` lists a repair instead of "no changes",
and a deploy of the same code repairs it, exits 0 and the site answers 200 through nginx.
"""

import json
import re
import time

import pytest

from tests.support.deploying import deployed, settled

pytestmark = pytest.mark.fleet
PRODUCTION = "truth"
ROOT = f"/srv/backstage/{PRODUCTION}"
ACT = f"{ROOT}/acts/storefront"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("truth"), PRODUCTION) as stage:
        yield stage


@pytest.fixture
def live(stage) -> str:
    """The live release, serving, with its predecessor retired; a test that left the host
    broken (on code without the repair) gets a fresh release first, so the next one starts
    from a working site."""
    if stage.page("/")[0] != 200:
        edit = stage.source / "storefront" / "settings.py"
        edit.write_text(edit.read_text() + f"\n# fresh release {time.time()}\n")
        stage.cli("deploy-act", "storefront")
    release = settled(stage, PRODUCTION)
    status, page = stage.page("/")
    assert status == 200 and f"release: {release}" in page
    return release


def assert_seen_broken(stage, live: str, reason: str) -> None:
    """``plan`` does not say "no changes"; ``status`` (JSON and table) names the problem."""
    planned = stage.cli("plan", "storefront").stdout
    assert planned.startswith("h1: storefront: changes\n"), planned
    assert re.search(rf"^  repair   .*{re.escape(reason)}", planned, re.MULTILINE), planned
    status = json.loads(stage.cli("status", "--json").stdout)["h1"]["storefront"]
    assert reason in (status.get("broken") or ""), status
    text = stage.cli("status").stdout
    assert f"h1: storefront: broken: {status['broken']}" in text, text


def assert_repaired(stage, done) -> str:
    """The deploy exited 0 (``check``), said what it repaired, and the site serves again."""
    assert "up to date" not in done.stderr, done.stderr
    release = settled(stage, PRODUCTION)
    status, page = stage.page("/")
    assert status == 200 and f"release: {release}" in page, (status, page)
    assert stage.page("/static/greetings/style.css")[0] == 200
    after = json.loads(stage.cli("status", "--json").stdout)["h1"]["storefront"]
    assert after["broken"] is None, after
    assert stage.cli("plan", "storefront").stdout == \
        f"h1: storefront: no changes (release {release} is live)\n"
    return release


def test_missing_live_release_directory_is_seen_and_redeployed(stage, live):
    stage.fleet.run("h1", ["rm", "-rf", f"{ACT}/releases/{live}"])
    assert stage.page("/static/greetings/style.css")[0] != 200

    assert_seen_broken(stage, live, f"release {live} is missing")
    done = stage.cli("deploy-act", "storefront")

    release = assert_repaired(stage, done)
    assert release != live  # the code went up again as a new release
    assert stage.fleet.run("h1", ["test", "-d", f"{ACT}/releases/{release}"]).returncode == 0


def test_dangling_stable_socket_link_is_seen_and_relinked(stage, live):
    stage.fleet.run("h1", ["ln", "-sfn", "storefront/gone.sock", f"{ROOT}/run/storefront.sock"])
    assert stage.page("/")[0] == 502

    assert_seen_broken(stage, live, "run/storefront.sock")
    done = stage.cli("deploy-act", "storefront")

    assert assert_repaired(stage, done) == live  # the live release was fine: only re-linked
    link = stage.fleet.run("h1", ["readlink", f"{ROOT}/run/storefront.sock"]).stdout.strip()
    assert link == f"storefront/{live}.sock"


def test_live_vassal_gone_is_seen_and_started_again(stage, live):
    stage.fleet.run("h1", ["mv", f"{ROOT}/vassals/storefront@{live}.ini", "/root/"])
    deadline = time.monotonic() + 15
    while stage.page("/")[0] != 502 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stage.page("/")[0] == 502

    assert_seen_broken(stage, live, "vassal")
    done = stage.cli("deploy-act", "storefront")

    assert assert_repaired(stage, done) == live  # the release was fine: its vassal came back
    history = stage.fleet.run("h1", ["tail", "-n", "1", f"{ROOT}/state/history.jsonl"]).stdout
    assert json.loads(history)["event"] == "repair"


def test_healthy_noop_deploy_is_still_one_command(stage, live):
    done = stage.cli("deploy-act", "storefront", "--verbose")
    assert "up to date" in done.stderr
    assert re.search(r"^h1\s+1 remote command", done.stderr, re.MULTILINE), done.stderr


def test_nothing_to_deploy_with_nginx_down_is_an_error_not_up_to_date(stage, live):
    stage.fleet.run("h1", ["nginx", "-s", "stop"])
    try:
        done = stage.cli("deploy-act", "storefront", check=False)
        assert done.returncode == 1, done
        assert "up to date" not in done.stderr
        assert "nginx is not running, so the gigs of storefront (shop) do not answer: " \
               "run setup-stage" in done.stderr
    finally:
        stage.cli("setup-stage")
    assert stage.page("/")[0] == 200
