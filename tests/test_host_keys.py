"""known_hosts markers (issue 12): ``@cert-authority`` and ``@revoked``, as OpenSSH reads them.

Keys and certificates are made by OpenSSH's ``ssh-keygen``; tests/fleet/test_host_keys.py
configures a real sshd with ``HostCertificate`` and checks each verdict against OpenSSH's own
client too.
"""

import re
import subprocess
from pathlib import Path

import paramiko
import pytest

from backstage.transport.known_hosts import HostKeyRefused, KnownHosts


def keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, capture_output=True)


def new_key(path: Path) -> Path:
    keygen("-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    return path


def sign(ca: Path, key: Path, *options: str) -> Path:
    """Sign ``key``'s public half with the CA; ``options``: e.g. ``-h -n h1``."""
    keygen("-s", str(ca), "-I", "test-id", *options, str(key.with_suffix(".pub")))
    return key.parent / f"{key.name}-cert.pub"


def public(key: Path) -> str:
    """``type base64`` of a key's public half."""
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def presented(key: Path, cert: Path | None = None) -> paramiko.PKey:
    """The key as paramiko holds a server's host key (with its certificate, if any)."""
    pkey = paramiko.Ed25519Key(filename=str(key))
    if cert:
        pkey.load_certificate(str(cert))
    return pkey


def known(tmp_path: Path, text: str) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text(text)
    return KnownHosts.load(path)


@pytest.fixture
def keys(tmp_path):
    """A CA, another CA, and h1's host key with a certificate for h1 from the CA."""
    ca, other, host = (new_key(tmp_path / n) for n in ("ca", "other-ca", "host"))
    return {"ca": ca, "other": other, "host": host, "cert": sign(ca, host, "-h", "-n", "h1")}


# --- reading the file ------------------------------------------------------------------------

def test_marker_lines_load_where_paramiko_raises(tmp_path, keys):
    path = tmp_path / "known_hosts"
    path.write_text(f"@cert-authority *.example.com {public(keys['ca'])}\n"
                    f"@revoked * {public(keys['other'])}\n"
                    f"h1 {public(keys['host'])}\n")
    with pytest.raises(paramiko.hostkeys.InvalidHostKey):
        paramiko.HostKeys(str(path))  # what made every connection a traceback
    loaded = KnownHosts.load(path)
    assert loaded.plain.lookup("h1")["ssh-ed25519"] == presented(keys["host"])
    assert [k.asbytes() for k in loaded.authorities_for("web1.example.com")] \
        == [presented(keys["ca"]).asbytes()]
    assert loaded.authorities_for("h1") == []


def test_a_revoked_key_is_no_plain_key_even_if_listed(tmp_path, keys):
    loaded = known(tmp_path, f"h1 {public(keys['host'])}\n@revoked * {public(keys['host'])}\n")
    assert loaded.plain.lookup("h1") is None
    assert loaded.is_revoked("h1", presented(keys["host"], keys["cert"]))


@pytest.mark.parametrize(("patterns", "trusted"), [
    ("h1", True), ("h?,db1", True), ("*", True), ("H1", True), ("[h1]:2222", False),
    ("h*,!h1", False), ("web1", False), ("hashed", True),
])
def test_host_patterns(tmp_path, keys, patterns, trusted):
    if patterns == "hashed":
        patterns = paramiko.HostKeys.hash_host("h1")
    loaded = known(tmp_path, f"@cert-authority {patterns} {public(keys['ca'])}\n")
    assert bool(loaded.authorities_for("h1")) is trusted


# --- a host certificate ----------------------------------------------------------------------

def test_a_certificate_from_the_trusted_ca_for_the_host_is_accepted(tmp_path, keys):
    loaded = known(tmp_path, f"@cert-authority h1 {public(keys['ca'])}\n")
    loaded.check_certificate("h1", "h1", presented(keys["host"], keys["cert"]))


@pytest.mark.parametrize(("case", "reason"), [
    ("other-ca", "signed by a CA known_hosts does not trust for this host"),
    ("other-host", "it is for h9, not 'h1'"),
    ("expired", "not valid now (valid from 2020-01-01 00:00:00 UTC to 2020-01-02"),
    ("not-yet", "not valid now"),
    ("user-cert", "it is a user certificate"),
    ("revoked-ca", "its CA is REVOKED"),
])
def test_a_certificate_is_refused(tmp_path, keys, case, reason):
    ca, host = keys["ca"], keys["host"]
    cert = {
        "other-ca": lambda: sign(keys["other"], host, "-h", "-n", "h1"),
        "other-host": lambda: sign(ca, host, "-h", "-n", "h9"),
        "expired": lambda: sign(ca, host, "-h", "-n", "h1", "-V", "20200101:20200102"),
        "not-yet": lambda: sign(ca, host, "-h", "-n", "h1", "-V", "+52w:+104w"),
        "user-cert": lambda: sign(ca, host, "-n", "h1"),
    }.get(case, lambda: keys["cert"])()
    text = f"@cert-authority h1 {public(ca)}\n"
    if case == "revoked-ca":
        text += f"@revoked h1 {public(ca)}\n"
    with pytest.raises(HostKeyRefused, match="^host certificate refused: " + re.escape(reason)):
        known(tmp_path, text).check_certificate("h1", "h1", presented(host, cert))

