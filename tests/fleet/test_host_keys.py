"""known_hosts markers (issue 12) on a real sshd: a host presenting a certificate of its host key
signed by a test CA, each verdict of Backstage checked against OpenSSH's own client. Reading
the file and checking certificates are tests/test_host_keys.py."""

import subprocess

import pytest

from tests.support.deploying import make_stage
from tests.test_host_keys import new_key, public, sign


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """h1, its sshd presenting a certificate of its host key signed by a test CA; h2 with a
    plain host key only."""
    work = tmp_path_factory.mktemp("hostkeys")
    stage = make_stage(work, "keys", {"h1": 'roles = ["web"]', "h2": 'roles = ["web"]'})
    try:
        ssh = stage.fleet.host("h1").workdir / "ssh"
        stage.ca = new_key(work / "ca")
        stage.host_key = ssh / "ssh_host_ed25519_key"
        sign(stage.ca, stage.host_key, "-h", "-n", "h1")
        with (ssh / "sshd_config").open("a") as f:
            f.write("HostCertificate /run/fleet-ssh/ssh_host_ed25519_key-cert.pub\n")
        stage.fleet.restart("h1")
        stage.known_hosts = work / "known_hosts"
        stage.inventory.write_text(stage.inventory.read_text().replace(
            "[ssh]\n", f'[ssh]\nknown_hosts = "{stage.known_hosts}"\n'))
        yield stage
    finally:
        stage.fleet.stop()


def verdicts(stage, known_hosts: str, host: str = "h1"):
    """Backstage's ``status`` and OpenSSH's ``ssh`` against a host with this known_hosts."""
    stage.known_hosts.write_text(known_hosts)
    ours = stage.cli("status", "--hosts", host, check=False)
    theirs = subprocess.run(
        ["ssh", "-F", str(stage.fleet.ssh_config), "-o", f"UserKnownHostsFile={stage.known_hosts}",
         host, "true"], capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in ours.stdout + ours.stderr
    return ours, theirs.returncode


@pytest.mark.fleet
def test_a_host_certificate_from_a_trusted_ca_is_accepted(stage):
    ours, theirs = verdicts(stage, f"@cert-authority h1 {public(stage.ca)}\n")
    assert (ours.returncode, theirs) == (0, 0), ours.stderr
    assert "storefront" in ours.stdout


@pytest.mark.fleet
@pytest.mark.parametrize(("case", "host", "reason"), [
    ("revoked-host-key", "h1", "host key REVOKED in "),
    ("revoked-plain-key", "h1", "host key REVOKED in "),
    ("untrusted-ca", "h1", "host certificate refused: signed by a CA known_hosts does not trust"),
    ("no-certificate", "h2", "unknown host key (it offered no certificate, and not in "),
])
def test_a_host_key_is_refused_in_one_line(stage, tmp_path, case, host, reason):
    host_key, ca = public(stage.host_key), public(stage.ca)
    text = {
        "revoked-host-key": f"@cert-authority h1 {ca}\n@revoked h1 {host_key}\n",
        "revoked-plain-key": f"h1 {host_key}\n@revoked * {host_key}\n",
        "untrusted-ca": f"@cert-authority h1 {public(new_key(tmp_path / 'other-ca'))}\n",
        "no-certificate": f"@cert-authority h* {ca}\n",
    }[case]
    ours, theirs = verdicts(stage, text, host)
    assert ours.returncode == 3 and theirs != 0
    (line,) = [line for line in ours.stderr.splitlines() if "cannot connect" in line]
    assert line.startswith(f"{host}  error {host}: cannot connect: {reason}"), ours.stderr
    assert ours.stderr.splitlines()[-1] == f"backstage: error: 1 of 1 hosts unreachable: {host}"
