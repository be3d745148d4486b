"""A real PowerDNS (Debian's pdns-server, sqlite3 backend, HTTP API) and a real ACME server
(Debian's pebble, resolving through that PowerDNS) for the Producer's tests.

Both listen on one address of the machine's loopback (127.<random>.<random>.1, so concurrent
runs do not collide) and nowhere else; pebble's DNS-01 and HTTP-01 lookups go to that
PowerDNS only (``-dnsserver``). Each fixture starts its server once per test module.
"""

import datetime
import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PDNS = "/usr/sbin/pdns_server"
PEBBLE = "/usr/bin/pebble"
SCHEMA = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"
ZONE = "example.test"
DNS_PORT, API_PORT, ACME_PORT, MANAGEMENT_PORT = 5353, 8081, 14000, 15000


def missing_tools() -> str | None:
    """Why these servers cannot run here, or None."""
    for tool in (PDNS, PEBBLE, SCHEMA, shutil.which("dig") or "dig"):
        if not Path(tool).exists():
            return f"{tool} is not installed (scripts/setup-machine test installs it)"
    return None


def loopback_address() -> str:
    """A fresh address on the loopback (all of 127.0.0.0/8 is routed to ``lo``)."""
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.1"


def wait_for_port(address: str, port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {address}:{port}: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class PowerDNS:
    """A running pdns_server: DNS on ``address:DNS_PORT``, its API on ``api_url``."""

    address: str
    api_key: str
    process: subprocess.Popen
    workdir: Path

    @property
    def api_url(self) -> str:
        return f"http://{self.address}:{API_PORT}"

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, f"{self.api_url}/api/v1/servers/localhost{path}",
                                    headers={"X-API-Key": self.api_key}, timeout=10, **kwargs)
        response.raise_for_status()
        return response

    def create_zone(self, zone: str) -> None:
        """A zone with its SOA and NS records (the test's, nothing of Backstage's)."""
        self.api("POST", "/zones", json={"name": f"{zone}.", "kind": "Native",
                                         "nameservers": [f"ns1.{zone}."]})

    def add_record(self, name: str, rtype: str, contents: list[str], ttl: int = 300,
                   zone: str = ZONE) -> None:
        """A record made by hand (no comment): Backstage must never touch it."""
        self.api("PATCH", f"/zones/{zone}.", json={"rrsets": [{
            "name": f"{name}.", "type": rtype, "ttl": ttl, "changetype": "REPLACE",
            "records": [{"content": c, "disabled": False} for c in contents]}]})

    def requests_made(self, method: str) -> int:
        """How many API requests of this method the server has answered (its log)."""
        return (self.workdir / "pdns.log").read_text().count(f'"{method} /api/v1/')

    def dig(self, name: str, rtype: str = "A") -> list[str]:
        """What the server answers for ``name``, sorted (dig, as a resolver would ask)."""
        out = subprocess.run(["dig", f"@{self.address}", "-p", str(DNS_PORT), "+short",
                              "+norecurse", name, rtype], capture_output=True, text=True,
                             check=True, timeout=10).stdout
        return sorted(line for line in out.splitlines() if line)


def start_powerdns(workdir: Path, address: str) -> PowerDNS:
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "pdns.sqlite3"
    import sqlite3

    with sqlite3.connect(database) as db:
        db.executescript(Path(SCHEMA).read_text())
    api_key = secrets.token_hex(16)
    (workdir / "pdns.conf").write_text("\n".join([
        "launch=gsqlite3", f"gsqlite3-database={database}",
        f"local-address={address}", f"local-port={DNS_PORT}",
        "api=yes", f"api-key={api_key}", "webserver=yes", f"webserver-address={address}",
        f"webserver-port={API_PORT}", "webserver-allow-from=127.0.0.0/8",
        f"socket-dir={workdir}", "guardian=no", "daemon=no", "disable-syslog=yes",
        "loglevel=6", "zone-cache-refresh-interval=0", "cache-ttl=0", "negquery-cache-ttl=0",
        "query-cache-ttl=0", "consistent-backends=yes",
        "security-poll-suffix=", "webserver-loglevel=detailed", ""]))  # no security poll: no query leaves the loopback
    log = workdir / "pdns.log"
    process = subprocess.Popen([PDNS, f"--config-dir={workdir}"], stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_for_port(address, API_PORT, process, log)
    return PowerDNS(address, api_key, process, workdir)


@dataclass
class Pebble:
    """A running pebble: the ACME directory at ``directory``; its HTTPS certificate in
    ``tls_ca``; the root its certificates chain to, from ``root()``."""

    address: str
    process: subprocess.Popen
    workdir: Path
    log: Path

    @property
    def directory(self) -> str:
        return f"https://{self.address}:{ACME_PORT}/dir"

    @property
    def tls_ca(self) -> Path:
        return self.workdir / "pebble-cert.pem"

    def root(self) -> str:
        """The root certificate the issued chains end at (PEM), from the management API."""
        response = requests.get(f"https://{self.address}:{MANAGEMENT_PORT}/roots/0",
                                verify=str(self.tls_ca), timeout=10)
        response.raise_for_status()
        return response.text

    def orders(self) -> int:
        """How many orders pebble has created (its log line per new order)."""
        return self.log.read_text().count("POST /order-plz ")


def self_signed(address: str, workdir: Path) -> None:
    """pebble's own HTTPS certificate and key, for ``address``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (workdir / "pebble-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "pebble-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def start_pebble(workdir: Path, address: str, dns: PowerDNS) -> Pebble:
    workdir.mkdir(parents=True, exist_ok=True)
    self_signed(address, workdir)
    config = workdir / "pebble.json"
    config.write_text(json.dumps({"pebble": {
        "listenAddress": f"{address}:{ACME_PORT}",
        "managementListenAddress": f"{address}:{MANAGEMENT_PORT}",
        "certificate": str(workdir / "pebble-cert.pem"),
        "privateKey": str(workdir / "pebble-key.pem"),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    log = workdir / "pebble.log"
    env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
           "PEBBLE_AUTHZREUSE": "0"}
    process = subprocess.Popen([PEBBLE, "-config", str(config),
                                "-dnsserver", f"{dns.address}:{DNS_PORT}"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, cwd=workdir)
    wait_for_port(address, ACME_PORT, process, log)
    return Pebble(address, process, workdir, log)


@pytest.fixture(scope="module")
def powerdns(tmp_path_factory):
    """A PowerDNS serving zone ``example.test`` (made by the test, through its API)."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    server = start_powerdns(tmp_path_factory.mktemp("pdns"), loopback_address())
    try:
        server.create_zone(ZONE)
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory, powerdns):
    """pebble, validating challenges through ``powerdns``."""
    server = start_pebble(tmp_path_factory.mktemp("pebble"), powerdns.address, powerdns)
    try:
        yield server
    finally:
        stop(server.process)
