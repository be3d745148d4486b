"""A known_hosts file as OpenSSH reads it, markers included, for paramiko.

paramiko reads plain ``host keytype key`` lines only: a line with a marker makes its loader
raise before any connection. Here ``@cert-authority`` lines name the certificate authorities
trusted to sign the host keys of the hosts they match, and ``@revoked`` lines keys never to
accept, whatever else the file says. paramiko gets the plain lines minus revoked keys, and
checks them as before; a host's certificate, which paramiko negotiates but does not verify, is
checked here (:meth:`KnownHosts.check_certificate`) with the ``cryptography`` package.

Host patterns follow OpenSSH: comma-separated, ``*`` and ``?`` wildcards, ``!`` negation,
hashed names (``|1|salt|hash``), ``[host]:port`` for ports other than 22.
"""

import base64
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    SSHCertificate,
    SSHCertificateType,
    load_ssh_public_identity,
)

CERT_SUFFIX = "-cert-v01@openssh.com"


class HostKeyRefused(Exception):
    """A host key or certificate that must not be accepted; the message says why."""


@dataclass
class Marked:
    """A marked line: its host patterns and its key."""

    patterns: list[str]
    key: paramiko.PKey


@dataclass
class KnownHosts:
    plain: paramiko.HostKeys = field(default_factory=paramiko.HostKeys)
    authorities: list[Marked] = field(default_factory=list)
    revoked: list[Marked] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, plain: paramiko.HostKeys | None = None) -> "KnownHosts":
        """Read the file (a missing one is empty); its plain keys go into ``plain`` (an SSH
        client's, say). Lines OpenSSH would skip are skipped."""
        known = cls(plain if plain is not None else paramiko.HostKeys())
        plain = []
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            marker, _, rest = line.partition(" ") if line.startswith("@") else ("", "", line)
            entry = _entry(rest.strip())
            if entry is None:
                continue
            if marker == "@cert-authority":
                known.authorities.append(Marked(entry.hostnames, entry.key))
            elif marker == "@revoked":
                known.revoked.append(Marked(entry.hostnames, entry.key))
            elif not marker:
                plain.append(entry)
        for entry in plain:
            if not any(_same_key(entry.key, r.key) for r in known.revoked):
                for name in entry.hostnames:
                    known.plain.add(name, entry.key.get_name(), entry.key)
        return known

    def authorities_for(self, name: str) -> list[paramiko.PKey]:
        """The CA keys trusted for a host (``name`` as known_hosts says it: ``[h]:port``)."""
        return [m.key for m in self.authorities if matches(m.patterns, name)]

    def is_revoked(self, name: str, key: paramiko.PKey) -> bool:
        return any(_same_key(m.key, key) and matches(m.patterns, name) for m in self.revoked)

    def check_certificate(self, name: str, principal: str, key: paramiko.PKey) -> None:
        """Raise HostKeyRefused unless ``key`` is a host certificate for ``principal``, valid
        now, signed by a CA trusted for ``name``, and neither it nor its CA is revoked."""
        cert = certificate_of(key)
        if cert.type != SSHCertificateType.HOST:
            raise _refused("it is a user certificate")
        try:
            cert.verify_cert_signature()
        except InvalidSignature:
            raise _refused("its signature is invalid") from None
        signer = _openssh_blob(cert.signature_key())
        if signer not in {k.asbytes() for k in self.authorities_for(name)}:
            raise _refused("signed by a CA known_hosts does not trust for this host "
                           "(@cert-authority)")
        if any(matches(m.patterns, name) and m.key.asbytes() == signer for m in self.revoked):
            raise _refused("its CA is REVOKED in known_hosts")
        if principal.encode() not in cert.valid_principals:
            names = ", ".join(p.decode(errors="replace") for p in cert.valid_principals)
            raise _refused(f"it is for {names or 'no host name'}, not {principal!r}")
        if not cert.valid_after <= time.time() < cert.valid_before:
            raise _refused(f"not valid now (valid from {_when(cert.valid_after)} "
                           f"to {_when(cert.valid_before)})")
        if cert.critical_options:
            options = ", ".join(o.decode(errors="replace") for o in cert.critical_options)
            raise _refused(f"it has critical options ({options})")


def _refused(reason: str) -> HostKeyRefused:
    return HostKeyRefused(f"host certificate refused: {reason}")


def certificate_of(key: paramiko.PKey) -> SSHCertificate:
    """The OpenSSH certificate paramiko received as a host key (its ``public_blob``)."""
    blob = key.public_blob
    line = f"{blob.key_type} {base64.b64encode(blob.key_blob).decode()}"
    return load_ssh_public_identity(line.encode())


def is_certificate(key: paramiko.PKey) -> bool:
    return key.public_blob is not None and key.public_blob.key_type.endswith(CERT_SUFFIX)


def matches(patterns: list[str], name: str) -> bool:
    """Whether a host name matches known_hosts patterns (a negated match wins)."""
    found = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        if pattern.startswith("|1|"):
            hit = paramiko.HostKeys.hash_host(name, pattern) == pattern
        else:
            regex = "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern)
            hit = re.fullmatch(regex, name, re.IGNORECASE) is not None
        if hit and negated:
            return False
        found = found or hit
    return found


def _entry(text: str) -> paramiko.hostkeys.HostKeyEntry | None:
    """A ``patterns keytype key`` line, or None for one paramiko cannot read."""
    try:
        return paramiko.hostkeys.HostKeyEntry.from_line(text)
    except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError):
        return None


def _same_key(a: paramiko.PKey, b: paramiko.PKey) -> bool:
    """The same public key (a certificate's key compares as its plain key)."""
    return a.asbytes() == b.asbytes()


def _openssh_blob(public_key) -> bytes:
    text = public_key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    return base64.b64decode(text.split()[1])


def _when(timestamp: int) -> str:
    if timestamp >= 2**64 - 1:
        return "forever"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
