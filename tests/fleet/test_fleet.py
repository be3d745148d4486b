"""The test fleet itself: isolated hosts, reachable by OpenSSH and Fabric, that stop cleanly."""

import secrets
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from backstage.sandbox import fleet as fleet_module
from backstage.sandbox.fleet import NETNS_DIR, Fleet, FleetError, fleet_available
from tests.support.fleet_fixtures import RUN_PREFIX

pytestmark = pytest.mark.fleet


def ssh(fleet, target: str, command: str) -> subprocess.CompletedProcess:
    """OpenSSH through the fleet's generated ssh_config."""
    return subprocess.run(
        ["ssh", "-F", str(fleet.ssh_config), target, command],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def processes_with(token: str) -> list[int]:
    """PIDs (root namespace) whose command line contains token."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and token in (proc / "cmdline").read_text():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_hosts_have_their_own_name_srv_and_etc(fleet_factory):
    real_passwd = Path("/etc/passwd").read_text()
    fleet = fleet_factory(("h1", "h2"))

    assert ssh(fleet, "h1", "hostname").stdout == "h1\n"
    assert ssh(fleet, "h2", "hostname").stdout == "h2\n"

    fleet.run("h1", "mkdir -p /srv/backstage && echo one > /srv/backstage/marker")
    assert fleet.host("h1").srv.joinpath("backstage/marker").read_text() == "one\n"
    assert fleet.run("h2", "test -e /srv/backstage/marker", check=False).returncode == 1
    assert not Path("/srv/backstage/marker").exists()

    fleet.run("h1", "useradd fleetprobe")
    assert "fleetprobe" in fleet.run("h1", "cat /etc/passwd").stdout
    assert "fleetprobe" not in fleet.run("h2", "cat /etc/passwd").stdout
    assert Path("/etc/passwd").read_text() == real_passwd


def test_host_network_is_loopback_only(fleet):
    links = fleet.run("h1", ["ip", "-o", "link"]).stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    assert fleet.run("h1", ["ip", "-4", "route", "show"]).stdout == ""  # not even a default route


def test_fabric_connects_with_generated_known_hosts(fleet):
    with fleet.connection("h1") as conn:
        assert conn.run("hostname", hide=True).stdout == "h1\n"
        assert conn.run("cat /proc/1/comm", hide=True).stdout == "sshd\n"
        conn.put(str(fleet.known_hosts), "/srv/uploaded")  # SFTP works too
    assert fleet.host("h1").srv.joinpath("uploaded").read_text() == fleet.known_hosts.read_text()


def test_wrong_or_missing_host_key_is_refused(fleet_factory):
    fleet = fleet_factory(("h1", "h2"))
    lines = fleet.known_hosts.read_text().splitlines()
    h2_key = next(line for line in lines if line.startswith("h2 ")).split(" ", 1)[1]

    fleet.known_hosts.write_text(f"h1 {h2_key}\n")
    with fleet.connection("h1") as conn, pytest.raises(paramiko.BadHostKeyException):
        conn.open()
    assert ssh(fleet, "h1", "true").returncode == 255

    fleet.known_hosts.write_text("")
    with fleet.connection("h1") as conn, pytest.raises(paramiko.SSHException):
        conn.open()


def test_unprivileged_user_logs_in(fleet_factory):
    real_passwd = Path("/etc/passwd").read_text()
    fleet = fleet_factory(("h1",), users=("deploy",))

    result = ssh(fleet, "deploy@h1", "id -u; echo $HOME")
    uid, home = result.stdout.split()
    assert int(uid) != 0 and home == "/home/deploy"
    with fleet.connection("h1", user="deploy") as conn:
        assert conn.run("id -un", hide=True).stdout == "deploy\n"
    assert Path("/etc/passwd").read_text() == real_passwd


def test_http_from_inside_the_host(fleet):
    assert fleet.http("h1") == (0, "")
    fleet.run("h1", "echo hello > /var/www/html/index.html && nginx")
    assert fleet.http("h1", "/", host_header="example.test") == (200, "hello\n")
    assert fleet.http("h1", "/missing")[0] == 404
    assert "GET /missing" in fleet.run("h1", "cat /var/log/nginx/access.log").stdout
    assert (
        fleet.host("h1").workdir / "var.upper/www/html/index.html"
    ).exists()  # not the real /var


def test_stop_leaves_nothing_behind(fleet_factory):
    fleet = fleet_factory(("h1", "h2"))
    token = f"{secrets.randbelow(10**6)}.5"
    fleet.run("h1", f"setsid sleep {token} >/dev/null 2>&1 < /dev/null &")
    assert processes_with(f"sleep\0{token}")
    hosts = [fleet.host("h1"), fleet.host("h2")]
    pids = [host.pid for host in hosts]

    fleet.stop()
    fleet.stop()

    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert not processes_with(f"sleep\0{token}")
    assert not [host for host in hosts if (NETNS_DIR / host.netns).exists()]


def test_restart_keeps_disks_and_host_key(fleet_factory):
    fleet = fleet_factory(("h1",), users=("deploy",))
    fleet.run("h1", "echo kept > /srv/kept; echo lost > /tmp/lost")
    old_pid = fleet.host("h1").pid

    fleet.kill("h1")
    assert not Path(f"/proc/{old_pid}").exists()
    assert ssh(fleet, "h1", "true").returncode == 255
    with pytest.raises(FleetError):
        fleet.run("h1", "true")

    fleet.restart("h1")
    assert fleet.host("h1").pid not in (0, old_pid)
    with fleet.connection("h1") as conn:
        assert conn.run("cat /srv/kept", hide=True).stdout == "kept\n"
        assert conn.run("test -e /tmp/lost", warn=True, hide=True).return_code == 1
    assert ssh(fleet, "deploy@h1", "id -un").stdout == "deploy\n"


def test_boot_failure_reports_output_and_stop_cleans_up(tmp_path, monkeypatch):
    if reason := fleet_available():
        pytest.skip(reason)
    monkeypatch.setattr(fleet_module, "SSHD", "/nonexistent/sshd")
    booting_fails = pytest.raises(FleetError, match="host h1 died while booting.*/nonexistent/sshd")
    with Fleet(tmp_path, prefix=RUN_PREFIX) as fleet, booting_fails:
        fleet.start(("h1", "h2"))
    assert not list(NETNS_DIR.glob(fleet.netns_prefix + "*"))


def test_hosts_start_quickly(fleet_factory):
    started = time.monotonic()
    fleet_factory(("h1", "h2", "h3", "h4"))
    assert time.monotonic() - started < 4  # about 0.1 s here; catches accidental sleeps
