"""Zero downtime on a real fleet host: blue/green switch under load, failed deploys that never
take traffic, rollback, the deploy lock, history, and cleanup."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.deploying import Load, deployed, interruptible, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "zd"
ROOT = f"/srv/backstage/{PRODUCTION}"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("zd"), PRODUCTION) as stage:
        yield stage


def edit(stage, relative: str, old: str, new: str) -> None:
    path = stage.source / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))


HOME = "greetings/templates/greetings/home.html"
VIEWS = "greetings/views.py"
URLS = "storefront/urls.py"


def heading(stage) -> str:
    status, body = stage.page("/")
    assert status == 200, body
    return re.search(r"<h1>(.*?)</h1>", body).group(1)


def assert_no_failed_request(result: dict) -> None:
    assert result["requests"] > 0
    assert result["socket_errors"] == 0, result
    assert result["non_2xx"] == 0, result


def test_deploys_and_rollback_under_load_drop_nothing(stage):
    first = heading(stage)

    load = Load(stage)
    edit(stage, HOME, first, "Release two")
    stage.cli("deploy-act", "storefront")
    assert_no_failed_request(load.finish())
    assert heading(stage) == "Release two"

    load = Load(stage)
    edit(stage, URLS, "from greetings import views", "import no_such_module  # noqa\n"
                                                     "from greetings import views")
    done = stage.cli("deploy-act", "storefront", check=False)
    assert_no_failed_request(load.finish())
    assert done.returncode == 1
    assert "step 'check' failed" in done.stderr and "no_such_module" in done.stderr
    assert heading(stage) == "Release two"
    edit(stage, URLS, "import no_such_module  # noqa\n", "")

    load = Load(stage)
    edit(stage, VIEWS, "    for model in (Person, Greeting):",
         "    return HttpResponse('broken', status=500)\n    for model in (Person, Greeting):")
    done = stage.cli("deploy-act", "storefront", check=False)
    assert_no_failed_request(load.finish())
    assert done.returncode == 1
    assert "step 'health' failed" in done.stderr and "answered 500" in done.stderr, done.stderr
    assert "last lines of" in done.stderr
    assert heading(stage) == "Release two"
    bad = stage.fleet.run("h1", f"cat {ROOT}/acts/storefront/bad-releases").stdout.split()
    assert len(bad) == 2
    assert stage.fleet.run("h1", f"ls {ROOT}/vassals").stdout.count(".ini\n") == 1

    load = Load(stage)
    done = stage.cli("rollback", "storefront")
    assert_no_failed_request(load.finish())
    assert heading(stage) == first
    live = stage.fleet.run("h1", f"readlink {ROOT}/run/storefront.sock").stdout
    assert re.search(r"release (\S+) \(was", done.stdout).group(1) in live


def test_rollback_refuses_a_bad_release(stage):
    bad = stage.fleet.run("h1", f"cat {ROOT}/acts/storefront/bad-releases").stdout.split()[0]
    done = stage.cli("rollback", "storefront", "--to", bad, check=False)
    assert done.returncode == 1
    assert "never goes to a bad release" in done.stderr


def deploy_in_background(stage) -> subprocess.Popen:
    return subprocess.Popen(
        interruptible([sys.executable, "-m", "backstage", "deploy-act", "storefront",
                       "--inventory", str(stage.inventory)]), cwd=stage.work,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lock(stage) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = f"{ROOT}/state/locks/act/storefront/info.json"
        if stage.fleet.run("h1", f"test -e {info}", check=False).returncode == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the deploy never took the lock")


PAUSE = """
import time

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.RunPython(lambda apps, schema_editor: time.sleep(8),
                                       migrations.RunPython.noop)]  # reversible: not refused
"""


def test_second_deploy_fails_at_once_naming_the_holder(stage):
    views = stage.source / VIEWS  # undo the broken health check of an earlier test, if any
    views.write_text(views.read_text().replace("    return HttpResponse('broken', status=500)\n", ""))
    edit(stage, HOME, "<h1>", "<h1>Locked ")
    # The first deploy holds its lock for a few seconds at least (a warm deploy may otherwise
    # be over before the second one has started).
    (stage.source / "greetings" / "migrations" / "0002_pause.py").write_text(PAUSE)
    first = deploy_in_background(stage)
    wait_for_lock(stage)
    started = time.monotonic()
    second = stage.cli("deploy-act", "storefront", check=False)
    elapsed = time.monotonic() - started
    assert second.returncode == 1
    assert "deploy lock held" in second.stderr and "command=deploy-act" in second.stderr
    assert f"pid={first.pid}" in second.stderr
    print(f"second deploy refused after {elapsed:.2f}s")
    assert first.wait(120) == 0, first.stderr


def test_sigkill_mid_upload_leaves_live_release_and_the_next_deploy_takes_the_lock_over(stage):
    big = stage.source / "greetings" / "static" / "greetings" / "big.bin"
    big.write_bytes(os.urandom(30 * 1024 * 1024))
    live = heading(stage)
    try:
        deploy = deploy_in_background(stage)
        wait_for_lock(stage)
        deploy.send_signal(signal.SIGKILL)
        deploy.wait()
    finally:
        big.unlink()
    assert heading(stage) == live

    status = stage.cli("status", "--act", "storefront")
    assert "h1: storefront locked by " in status.stdout and f"pid {deploy.pid}" in status.stdout
    assert "its process is gone: the next deploy-act takes it over" in status.stdout
    done = stage.cli("deploy-act", "storefront")
    assert "h1  taking over act/storefront: its holder is gone" in done.stderr
    assert f"pid {deploy.pid}, deploy-act" in done.stderr
    entries = stage.fleet.run("h1", f"cat {ROOT}/state/history.jsonl").stdout.splitlines()
    takeover = [json.loads(e) for e in entries if '"takeover"' in e][-1]
    assert takeover["holder"]["pid"] == deploy.pid and "token" not in takeover["holder"]
    assert heading(stage) == live


def test_history_shows_every_kind_of_event_newest_first(stage):
    stage.cli("lock", "--message", "maintenance window")
    refused = stage.cli("deploy-act", "storefront", check=False)
    assert "maintenance window" in refused.stderr
    stage.cli("unlock")
    stage.cli("stop", "storefront")
    stage.cli("start", "storefront")
    entries = [json.loads(line) for line in
               stage.cli("history", "--limit", "50", "--json").stdout.splitlines()]
    events = [e["event"] for e in entries]
    assert events[:4] == ["start", "stop", "unlock", "lock"]
    assert {"deploy", "rollback"} <= set(events)
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)
    assert all(e["host"] == "h1" for e in entries)


def test_cleanup_after_eight_deploys_with_one_bad(tmp_path):
    stage = make_stage(tmp_path, "clean", {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        good = []
        for number in range(8):
            edit(stage, HOME, "<h1>", f"<h1>{number} ")
            if number == 5:
                edit(stage, URLS, "from greetings import views",
                     "import no_such_module  # noqa\nfrom greetings import views")
                assert stage.cli("deploy-act", "storefront", check=False).returncode == 1
                edit(stage, URLS, "import no_such_module  # noqa\n", "")
                continue
            release = re.search(r"release (\S+)", stage.cli("deploy-act", "storefront").stdout)
            good.append(release.group(1))
        releases = stage.fleet.run("h1", "ls /srv/backstage/clean/acts/storefront/releases"
                                   ).stdout.split()
        assert releases == good[-5:]  # the bad one went first; the newest five good ones stay
        time.sleep(2)  # the previous release is retired in the background, a second later
        retired = stage.fleet.run("h1", "ls /srv/backstage/clean/vassals").stdout.split()
        assert sorted(retired) == sorted([f"storefront@{r}.ini.retired" for r in good[-5:-1]]
                                         + [f"storefront@{good[-1]}.ini"])
    finally:
        stage.fleet.stop()


def test_ctrl_c_during_a_deploy_frees_the_lock_and_keeps_the_live_release(stage):
    live = heading(stage)
    edit(stage, HOME, "<h1>", "<h1>Interrupted ")
    deploy = deploy_in_background(stage)
    wait_for_lock(stage)
    deploy.send_signal(signal.SIGINT)
    _, stderr = deploy.communicate(timeout=120)
    assert deploy.returncode == 130, stderr
    assert "interrupted" in stderr
    assert stage.fleet.run("h1", f"ls -d {ROOT}/state/locks/*/*/", check=False).stdout == ""
    assert heading(stage) == live
    edit(stage, HOME, "<h1>Interrupted ", "<h1>")
