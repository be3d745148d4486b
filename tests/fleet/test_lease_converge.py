"""Lock leases and ``converge`` on a real three-host fleet.

A deploy's lock from another machine is taken over only once its lease ran out (said
loudly), never while its holder renews it: a rollout renews its lease while it runs. After a
rollout killed mid-way, ``converge`` brings every host to one release: forward when the new
release passed its checks everywhere it went live and is the workstation's code, else back.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "lse"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOSTS = ("h1", "h2", "h3")
HOME = "greetings/templates/greetings/home.html"
INFO = f"{ROOT}/state/locks/act/storefront/info.json"
HEALTH_LINE = 'health = { path = "/healthz" }\n'
LEASE = 5
FOREIGN = {"by": "ci@elsewhere", "host": "elsewhere", "pid": 4242, "time": "2026-11-29T00:00:00Z",
           "command": "deploy-act", "act": "storefront", "message": None, "token": "f0reign",
           "release": "20261129T000000Z-deadbeef", "lease": LEASE}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("lse"), PRODUCTION,
                       {name: 'roles = ["web"]' for name in HOSTS})
    try:
        text = stage.inventory.read_text().replace(
            HEALTH_LINE, f"{HEALTH_LINE}bake = 1\nlock_timeout = {LEASE}\n")
        stage.inventory.write_text(text)
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
            .rsplit("/", 1)[1] for h in HOSTS}


def locked(stage) -> list[str]:
    return [h for h in HOSTS if stage.fleet.run(h, f"test -e {INFO}", check=False).returncode == 0]


def plant_lock(stage, seconds_ago: float) -> None:
    """A deploy's lock from another machine on every host, last renewed that long ago."""
    for host in HOSTS:
        stage.fleet.run(host, f"mkdir -p {os.path.dirname(INFO)} && printf '%s' "
                              f"'{json.dumps(FOREIGN)}' > {INFO} && "
                              f"touch -d @{time.time() - seconds_ago:.0f} {INFO}")


def good(stage, host: str) -> list[str]:
    return stage.fleet.run(host, f"cat {ROOT}/acts/storefront/good-releases").stdout.split()


def test_a_lock_from_elsewhere_whose_lease_ran_out_is_taken_over_loudly(stage):
    plant_lock(stage, 60)
    status = stage.cli("status", "--act", "storefront").stdout
    assert "storefront locked by ci@elsewhere" in status
    assert "its lease ran out: the next deploy-act takes it over" in status
    set_heading(stage, "After a lease ran out")
    done = stage.cli("deploy-act", "storefront")
    for host in HOSTS:
        assert re.search(rf"{host}  taking over act/storefront: its holder is gone "
                         r"\(ci@elsewhere, pid 4242, deploy-act 20261129T000000Z-deadbeef\): its "
                         rf"lease was not renewed for 6\d\.\d s \(lock_timeout {LEASE} s\) by "
                         "ci@elsewhere on another machine", done.stderr), done.stderr
        assert "After a lease ran out" in stage.page("/", host)[1]
    assert not locked(stage)


def test_a_live_holders_lock_from_elsewhere_is_never_broken(stage):
    plant_lock(stage, 0)
    set_heading(stage, "Never over a live lock")
    before = live(stage)
    done = stage.cli("deploy-act", "storefront", check=False)
    assert done.returncode != 0
    assert "deploy lock held (wait for it" in done.stderr and "by=ci@elsewhere" in done.stderr
    assert live(stage) == before and locked(stage) == list(HOSTS)
    for host in HOSTS:
        assert "f0reign" in stage.fleet.run(host, f"cat {INFO}").stdout
    stage.cli("unlock", "storefront")


def deploy_elsewhere(stage, *args: str) -> subprocess.Popen:
    """deploy-act from a process whose machine is named ``elsewhere-ws`` (its own UTS
    namespace): its locks are judged by their lease, as another workstation's are."""
    command = " ".join([sys.executable, "-m", "backstage", "deploy-act", "storefront", *args,
                        "--inventory", str(stage.inventory)])
    return subprocess.Popen(["unshare", "--uts", "sh", "-c",
                             f"hostname elsewhere-ws && exec {command}"], cwd=stage.work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(stage, host: str, command: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while stage.fleet.run(host, command, check=False).returncode != 0:
        assert process.poll() is None, f"the deploy ended before {command!r} held"
        assert time.monotonic() < deadline, f"{command!r} never held"
        time.sleep(0.05)


def test_a_running_rollout_renews_its_lease_so_it_is_never_taken_over(stage):
    """A serial rollout from "another machine" outlasts its 5 s lease (three bakes of 3 s):
    meanwhile its lock's file stays younger than the lease, and a second deploy from here is
    refused instead of taking it over."""
    text = stage.inventory.read_text()
    stage.inventory.write_text(text.replace("bake = 1\n", "bake = 3\n"))
    set_heading(stage, "Renewed while it ran")
    try:
        first = deploy_elsewhere(stage, "--serial", "1")
        wait_for(stage, "h1", f"grep -q elsewhere-ws {INFO}", first)
        time.sleep(LEASE + 2)
        assert first.poll() is None, "the rollout ended before its lease would have run out"
        age = float(stage.fleet.run("h3", f"echo $(( $(date +%s) - $(stat -c %Y {INFO}) ))")
                    .stdout)
        assert age < LEASE
        second = stage.cli("deploy-act", "storefront", check=False)
        assert second.returncode != 0 and "deploy lock held (wait for it" in second.stderr
        assert "taking over" not in second.stderr
        assert first.wait(120) == 0, first.stderr.read()
    finally:
        stage.inventory.write_text(text)
    assert len(set(live(stage).values())) == 1 and not locked(stage)
    print(f"\nlease {LEASE} s: a rollout of more than {LEASE + 2} s renewed it (its lock "
          f"{age:.0f} s old then); a second deploy was refused, nothing taken over")


def kill_once(stage, condition: str, host: str = "h1") -> str:
    """Start a three-host --serial 1 deploy, SIGKILL it once ``condition`` holds on
    ``host``; the release it was rolling out."""
    killed = subprocess.Popen(
        [sys.executable, "-m", "backstage", "deploy-act", "storefront", "--serial", "1",
         "--inventory", str(stage.inventory)], cwd=stage.work, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(stage, host, condition, killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    return json.loads(stage.fleet.run("h3", f"cat {INFO}").stdout)["release"]  # its intent


def abandon_after_h1(stage) -> str:
    """The state a rollout from another machine leaves when it dies right after h1's switch
    passed its checks: h1 on its release (recorded good), h2 and h3 still on the old one
    and locked by it, its lease run out. Its release."""
    stage.cli("deploy-act", "storefront", "--hosts", "h1")
    new = live(stage)["h1"]
    for host in ("h2", "h3"):
        stage.fleet.run(host, f"mkdir -p {os.path.dirname(INFO)} && printf '%s' "
                              f"'{json.dumps({**FOREIGN, 'release': new})}' > {INFO} && "
                              f"touch -d @{time.time() - 60:.0f} {INFO}")
    return new


def test_converge_goes_forward_when_the_new_release_passed_everywhere_it_went_live(stage):
    old = set(live(stage).values()).pop()
    set_heading(stage, "Converged forward")
    new = abandon_after_h1(stage)
    assert new in good(stage, "h1") and live(stage)["h3"] == old
    done = stage.cli("converge", "storefront")
    assert f"converge: {new} passed its checks everywhere it went live (h1): forward" \
        in done.stderr, done.stderr
    assert "h2  taking over act/storefront: its holder is gone (ci@elsewhere" in done.stderr
    assert set(live(stage).values()) == {new} and not locked(stage)
    for host in HOSTS:
        assert "Converged forward" in stage.page("/", host)[1]


def test_converge_goes_back_when_the_workstation_has_other_code(stage):
    old = set(live(stage).values()).pop()
    set_heading(stage, "Abandoned")
    new = abandon_after_h1(stage)
    set_heading(stage, "Something else")
    done = stage.cli("converge", "storefront")
    assert f"converge: {new} passed its checks where it went live, but the workstation's " \
           f"code is not its code: back to {old}" in done.stderr, done.stderr
    assert "h3  taking over act/storefront: its holder is gone (ci@elsewhere): its lease " \
        "was not renewed" in done.stderr
    assert set(live(stage).values()) == {old} and not locked(stage)
    for host in HOSTS:
        code, body = stage.page("/", host)
        assert code == 200 and "Abandoned" not in body


def test_converge_goes_back_from_a_release_live_before_its_checks_passed(stage):
    old = set(live(stage).values()).pop()
    set_heading(stage, "Killed mid-bake")
    new = kill_once(stage, f"test $(readlink {ROOT}/acts/storefront/current) != releases/{old}")
    assert new not in good(stage, "h1")
    done = stage.cli("converge", "storefront")
    assert re.search(rf"converge: {new} (went live on h1 without passing its checks there|"
                     rf"failed its checks on h1): back to {old}", done.stderr), done.stderr
    assert set(live(stage).values()) == {old} and not locked(stage)
    nothing = stage.cli("converge", "storefront")
    assert "is on one release everywhere, with no abandoned rollout" in nothing.stderr
