"""Certificates from ACME on real parts: pebble (Let's Encrypt's test server) validating DNS-01
through a real PowerDNS the Producer writes, a fleet of two hosts serving the gig over HTTPS,
checked with curl against pebble's root."""

import contextlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fleet.test_producer import ADDRESSES, WWW, with_producer
from tests.support.deploying import DOMAIN, make_stage
from tests.support.producer_services import ZONE

pytestmark = pytest.mark.fleet

ROOT_ON_HOST = "/tmp/pebble-root.pem"


@pytest.fixture(scope="module")
def acme_stage(tmp_path_factory, powerdns, pebble):
    """The example act on h1 and h2 with gig shop ``tls = "acme"`` (both domains), deployed:
    the deploy obtained the certificate."""
    work = tmp_path_factory.mktemp("acme")
    hosts = {name: f'roles = ["web"]\npublic_address = "{address}"'
             for name, address in ADDRESSES.items()}
    stage = make_stage(work, "acmeshop", hosts)
    try:
        with_producer(stage, powerdns)
        text = stage.inventory.read_text().replace(f'domains = ["{DOMAIN}", "{WWW}"]',
                                                   f'domains = ["{DOMAIN}", "{WWW}"]\n'
                                                   'tls = "acme"')
        stage.inventory.write_text(text + f'\n[acme]\ndirectory = "{pebble.directory}"\n'
                                   f'email = "ops@{ZONE}"\nca_bundle = "{pebble.tls_ca}"\n')
        root = pebble.root()
        for host in ADDRESSES:
            stage.fleet.run(host, f"cat > {ROOT_ON_HOST}", input=root)
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def https(stage, host: str, domain: str = DOMAIN) -> str:
    """The HTTP status of the gig's page over HTTPS on ``host``, verified with pebble's root."""
    done = stage.fleet.run(host, [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", ROOT_ON_HOST,
        "--resolve", f"{domain}:443:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code}",
        f"https://{domain}/"], check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def serial(stage, host: str) -> str:
    """The serial number of the certificate the host's nginx serves for the gig."""
    return stage.fleet.run(host, f"openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN}"
                           " </dev/null 2>/dev/null | openssl x509 -noout -serial").stdout


def test_one_dns01_certificate_serves_the_gig_on_both_hosts(acme_stage, pebble):
    stage = acme_stage
    for host in ADDRESSES:
        assert https(stage, host) == "200" and https(stage, host, WWW) == "200"
        key = stage.fleet.run(host, "stat -c '%a %U' /srv/backstage/acmeshop/tls/shop/"
                                    "privkey.pem").stdout.split()
        assert key == ["600", "root"]
    assert serial(stage, "h1") == serial(stage, "h2")
    assert pebble.orders() == 1
    # The challenge records were withdrawn.
    assert stage.cli("dns").stdout.count("match") == 2
    status = stage.cli("status").stdout
    assert "gig shop: dns match" in status, status
    for host in ADDRESSES:
        assert re.search(rf"^{host}: gig shop: certificate from Pebble Intermediate CA \S+, "
                         r"expires \S+ \(\d+ days\)$", status, re.MULTILINE), status


@contextlib.contextmanager
def wrk(stage, host: str, seconds: int):
    """``wrk -c50`` over HTTPS against the gig on ``host``, from inside its namespace, naming
    the gig's domain in the handshake (SNI: nginx refuses one no gig books). The domain
    resolves to 127.0.0.1 through the namespace's own hosts file (``ip netns exec`` mounts
    ``/etc/netns/<ns>/hosts`` over ``/etc/hosts``), removed afterwards."""
    netns = stage.fleet.host(host).netns
    hosts = Path("/etc/netns", netns, "hosts")
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(f"127.0.0.1 localhost {DOMAIN}\n")
    try:
        yield subprocess.Popen(
            ["ip", "netns", "exec", netns, "wrk", "-t2", "-c50", f"-d{seconds}s",
             f"https://{DOMAIN}:443/"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
    finally:
        shutil.rmtree(hosts.parent, ignore_errors=True)


def test_renew_certs_replaces_only_when_due_or_forced(acme_stage, pebble):
    stage = acme_stage
    orders, before = pebble.orders(), serial(stage, "h1")
    stage.cli("renew-certs")
    assert pebble.orders() == orders and serial(stage, "h1") == before
    with wrk(stage, "h1", 12) as load:
        stage.cli("renew-certs", "--force")
        out, _ = load.communicate(timeout=60)
    assert re.search(r"^\s*\d+ requests in", out, re.MULTILINE), out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    assert pebble.orders() == orders + 1
    after = serial(stage, "h1")
    assert after != before and serial(stage, "h2") == after
    for host in ADDRESSES:
        assert https(stage, host) == "200"


def test_a_failed_challenge_is_one_line_and_the_old_certificate_keeps_serving(acme_stage,
                                                                             powerdns, pebble):
    """A domain delegated away: pebble finds no TXT record for it, the order fails."""
    stage = acme_stage
    away = f"away.{ZONE}"
    powerdns.add_record(away, "NS", ["ns.elsewhere.test."])
    before, orders, text = serial(stage, "h1"), pebble.orders(), stage.inventory.read_text()
    stage.inventory.write_text(text.replace(f'"{WWW}"]', f'"{WWW}", "{away}"]'))
    try:
        done = stage.cli("book-gig", "shop", check=False)
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert done.returncode == 1 and len(errors) == 1, done.stderr
        assert errors[0].startswith(f"backstage: error: acme {pebble.directory}: gig shop: "
                                    "the DNS-01 challenge failed"), errors
        assert pebble.orders() == orders + 1
        for host in ADDRESSES:
            assert serial(stage, host) == before and https(stage, host) == "200"
        assert powerdns.dig(f"_acme-challenge.{DOMAIN}", "TXT") == []  # withdrawn
    finally:
        stage.inventory.write_text(text)


def test_a_wildcard_domain_is_issued_by_dns01_and_resolves(acme_stage, powerdns, pebble):
    stage = acme_stage
    wildcard, text, orders = f"*.{DOMAIN}", stage.inventory.read_text(), pebble.orders()
    stage.inventory.write_text(text.replace(f'"{WWW}"]', f'"{WWW}", "{wildcard}"]'))
    try:
        # Its domains changed: a new certificate (one order); the act's ALLOWED_HOSTS too.
        stage.cli("deploy-act", "storefront")
        assert pebble.orders() == orders + 1
        assert powerdns.dig(f"any.{DOMAIN}") == sorted(ADDRESSES.values())
        for host in ADDRESSES:
            assert https(stage, host, f"any.{DOMAIN}") == "200"
            assert https(stage, host) == "200"
    finally:
        stage.inventory.write_text(text)
