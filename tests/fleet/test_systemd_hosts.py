"""A fresh Debian 12 server booted with systemd: provisioned by setup-stage, deployed, rebooted.

One systemd fleet host (``systemd-nspawn --boot`` of a ``debootstrap --variant=minbase`` root
filesystem with only sshd and python3 added; see :mod:`backstage.sandbox.machines`) is shared by
the whole module, in order: ``setup-stage`` on the fresh host without a package source fails in
one line and changes nothing; with the local apt repository (the test setup's offline mirror) it
installs nginx and the venv module, writes the sysctl file, enables nginx and runs the Emperor
as a systemd unit; the storefront deploys and serves; ``setup-stage`` again changes nothing;
the host is shut down and booted and serves the live release with no Backstage command; then a
non-root SSH user with the README's sudo rule stops, starts, restarts, rolls back and reads
status and history.
"""

import json
import re

import pytest

from backstage.model import release_of_link
from backstage.model.provision import SYSCTL_FILE
from backstage.sandbox.images import Image
from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet

PRODUCTION = "fresh"
ROOT = f"/srv/backstage/{PRODUCTION}"
UNIT = f"backstage-{PRODUCTION}-emperor.service"
SUDO_RULE = "deploy ALL=(root) NOPASSWD: /usr/bin/bash, /usr/bin/python3\n"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("sd12"), PRODUCTION, {"h1": 'roles = ["web"]'},
                       users=("deploy",), image=Image("bookworm"))
    try:
        yield stage
    finally:
        stage.fleet.stop()


def on_host(stage, command: str, check: bool = True):
    return stage.fleet.run("h1", command, check=check)


def installed(stage, package: str) -> bool:
    return on_host(stage, f"dpkg-query -W -f '${{Status}}' {package} 2>/dev/null",
                   check=False).stdout == "install ok installed"


def live_release(stage) -> str:
    return on_host(stage, f"readlink {ROOT}/acts/storefront/current").stdout.strip().split("/")[-1]


def test_a_fresh_host_without_a_package_source_fails_in_one_line_and_is_left_alone(stage):
    assert not installed(stage, "nginx") and not installed(stage, "python3-venv")
    # (The probe installs Backstage's helper in the stage folder, as on any host.)
    snapshot = "ls -A /etc/sysctl.d /etc/nginx 2>&1; md5sum /etc/passwd /var/lib/dpkg/status"
    before = on_host(stage, snapshot).stdout
    done = stage.cli("setup-stage", check=False)
    assert done.returncode == 1
    assert ("h1: nginx, python3-venv, libpython3.11, libxml2 not installed and the host has "
            "no apt package source: install them ('apt-get install nginx python3-venv "
            "libpython3.11 libxml2') or configure a package source") in done.stderr
    assert on_host(stage, snapshot).stdout == before


def test_dry_run_lists_the_packages_and_changes_nothing(stage):
    stage.fleet.add_apt_source("h1")
    done = stage.cli("setup-stage", "--dry-run")
    assert re.search(r"h1 +would install packages nginx python3-venv libpython3.11 libxml2; "
                     rf"write {SYSCTL_FILE}; enable nginx at boot; create \d+ directories",
                     done.stderr), done.stderr
    assert not installed(stage, "nginx")
    assert on_host(stage, f"ls -A {ROOT}").stdout.split() == ["stage"]


def test_setup_stage_provisions_from_the_local_repository(stage):
    stage.cli("setup-stage")
    assert installed(stage, "nginx") and installed(stage, "python3-venv")
    assert "net.core.somaxconn = 4096" in on_host(stage, f"cat {SYSCTL_FILE}").stdout
    for unit in ("nginx", UNIT):
        assert on_host(stage, f"systemctl is-enabled {unit}").stdout.strip() == "enabled"
        assert on_host(stage, f"systemctl is-active {unit}").stdout.strip() == "active"
    shown = on_host(stage, f"systemctl show -p Type -p MainPID {UNIT}").stdout.split()
    assert "Type=notify" in shown
    # The Emperor is the unit's main process itself: not daemonized away from systemd.
    main_pid = next(p for p in shown if p.startswith("MainPID=")).split("=")[1]
    assert "uwsgi" in on_host(stage, f"cat /proc/{main_pid}/cmdline").stdout
    assert not re.search(r"^daemonize", on_host(stage, f"cat {ROOT}/stage/emperor.ini").stdout,
                         re.MULTILINE)


def test_the_storefront_deploys_and_serves(stage):
    stage.cli("deploy-act", "storefront")
    status, body = stage.page("/")
    assert status == 200 and "Welcome to the storefront" in body


def test_setup_stage_again_changes_nothing(stage):
    snapshot = "md5sum /etc/passwd /etc/group /var/lib/dpkg/status " + SYSCTL_FILE
    before = on_host(stage, snapshot).stdout
    done = stage.cli("setup-stage")
    assert "nothing to change" in done.stderr, done.stderr
    assert on_host(stage, snapshot).stdout == before


def test_the_emperor_logs_to_the_journal_and_nginx_reloads_through_systemd(stage):
    log = on_host(stage, f"journalctl -u {UNIT} --no-pager -o cat").stdout
    assert "*** starting uWSGI Emperor ***" in log, log[-2000:]
    # The deploy booked the gig: nginx was reloaded by systemd (ExecReload), not by a signal.
    nginx = on_host(stage, "journalctl -u nginx --no-pager -o cat").stdout
    assert re.search(r"^Reload(ing|ed) nginx", nginx, re.MULTILINE), nginx


def test_a_rebooted_host_serves_the_live_release_without_backstage(stage):
    release = live_release(stage)
    boot_id = on_host(stage, "cat /proc/sys/kernel/random/boot_id").stdout
    stage.fleet.restart("h1")
    assert on_host(stage, "cat /proc/sys/kernel/random/boot_id").stdout != boot_id
    status, body = stage.page("/")
    assert status == 200 and f"release: {release}" in body, (status, body)
    assert live_release(stage) == release
    assert on_host(stage, f"readlink {ROOT}/run/storefront.sock").stdout.strip() == \
        f"storefront/{release}.sock"


def test_become_sudo_drives_every_act_task(stage):
    on_host(stage, "apt-get -q -y install sudo")  # from the local repository
    stage.fleet.run("h1", "cat > /etc/sudoers.d/backstage && chmod 440 /etc/sudoers.d/backstage"
                          " && visudo -cq", input=SUDO_RULE)
    text = stage.inventory.read_text().replace(
        '[hosts.h1]\nroles = ["web"]', '[hosts.h1]\nroles = ["web"]\nuser = "deploy"\n'
        'become = "sudo"')
    assert 'become = "sudo"' in text
    stage.inventory.write_text(text)
    first = live_release(stage)
    with (stage.source / "greetings" / "views.py").open("a") as f:
        f.write("\n# a change, so the next deploy makes a new release\n")
    stage.cli("deploy-act", "storefront")
    second = live_release(stage)
    assert second != first and stage.page("/")[0] == 200
    stage.cli("stop", "storefront")
    assert stage.page("/")[0] == 502
    stage.cli("start", "storefront")
    assert stage.page("/")[0] == 200
    stage.cli("restart", "storefront")
    assert stage.page("/")[0] == 200
    stage.cli("rollback", "storefront")
    assert live_release(stage) == first and stage.page("/")[0] == 200
    status = json.loads(stage.cli("status", "--json").stdout)["h1"]["storefront"]
    assert release_of_link(status["live"]) == first, status
    events = [json.loads(line) for line in stage.cli("history", "--json").stdout.splitlines()]
    assert [e["event"] for e in events[:5]] == [
        "rollback", "restart", "start", "stop", "deploy"], events[:5]
    done = stage.cli("setup-stage")
    assert "nothing to change" in done.stderr, done.stderr
