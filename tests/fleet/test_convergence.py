"""A deploy killed at any moment (SIGKILL of the workstation's process) of a three-host
``--serial 1`` rollout: ``status`` names a split fleet and the killed deploy's lock, and the
next ``deploy-act``, with no ``unlock``, takes the lock over and brings every host to one
release that serves."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "cvg"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOSTS = ("h1", "h2", "h3")
HOME = "greetings/templates/greetings/home.html"
# When the workstation is killed: once a host shows a rollout reached a point (and after a
# further delay), from taking the locks to the last host's switch.
MOMENTS = (
    ("locks taken", "h3", "test -e {root}/state/locks/act/storefront/info.json", 0),
    ("new vassals starting", "h1", "test $(ls {root}/vassals | grep -c '[.]ini$') -gt 1", 0),
    ("h1 switched", "h1", "test $(readlink {root}/acts/storefront/current) != {live}", 0),
    ("h1 switched, +0.5 s", "h1", "test $(readlink {root}/acts/storefront/current) != {live}",
     0.5),
    ("h2 switched", "h2", "test $(readlink {root}/acts/storefront/current) != {live}", 0),
    ("h2 switched, +0.3 s", "h2", "test $(readlink {root}/acts/storefront/current) != {live}",
     0.3),
    ("h3 switched", "h3", "test $(readlink {root}/acts/storefront/current) != {live}", 0),
)

@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("cvg"), PRODUCTION,
                       {name: 'roles = ["web"]' for name in HOSTS})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def set_heading(stage, text: str) -> None:
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{text}</h1>", path.read_text(), count=1))


def live(stage) -> dict[str, str]:
    return {h: stage.fleet.run(h, f"readlink {ROOT}/acts/storefront/current").stdout.strip()
            for h in HOSTS}


def locked(stage) -> list[str]:
    info = f"{ROOT}/state/locks/act/storefront/info.json"
    return [h for h in HOSTS if stage.fleet.run(h, f"test -e {info}", check=False).returncode == 0]


def deploy(stage) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backstage", "deploy-act", "storefront", "--serial", "1",
         "--inventory", str(stage.inventory)], cwd=stage.work, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(stage, host: str, command: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while stage.fleet.run(host, command, check=False).returncode != 0:
        assert process.poll() is None, f"the deploy ended before {command!r} held"
        assert time.monotonic() < deadline, f"{command!r} never held"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", MOMENTS, ids=[m[0] for m in MOMENTS])
def test_a_killed_rollout_is_named_by_status_and_converged_by_the_next_deploy(stage, moment):
    name, host, condition, delay = moment
    (old,) = set(live(stage).values())
    heading = f"Killed at {name}"
    set_heading(stage, heading)
    killed = deploy(stage)
    wait_for(stage, host, condition.format(root=ROOT, live=old), killed)
    time.sleep(delay)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()

    releases, held = live(stage), locked(stage)
    split = len(set(releases.values())) > 1
    status = stage.cli("status", "--act", "storefront").stdout
    assert ("storefront is split across releases: " in status) == split, status
    for name_ in held:
        assert f"{name_}: storefront locked by " in status and f"pid {killed.pid}" in status
        assert "its process is gone: the next deploy-act takes it over" in status

    done = stage.cli("deploy-act", "storefront", "--serial", "1", check=False)
    assert done.returncode == 0, done.stderr
    assert ("taking over act/storefront: its holder is gone" in done.stderr) == bool(held)
    assert len(set(live(stage).values())) == 1, live(stage)  # one release everywhere
    for name_ in HOSTS:
        code, body = stage.page("/", name_)
        assert code == 200 and f"<h1>{heading}</h1>" in body, (name_, body[:200])
    assert not locked(stage)
    switched = sum(r != old for r in releases.values())
    print(f"\nSIGKILL once {name}: {switched} of 3 hosts switched, {len(held)} locked"
          f"{', split' if split else ''}; status named it, one deploy-act converged "
          f"(200 on every host, {'takeover' if held else 'no lock left'})")
