"""Certificates from ACME through HTTP-01, on real parts and with no Producer: pebble fetches
each answer from the gig's host nginx on port 80, as a public ACME directory would.

The host's public address is a loopback address of this machine on which a forwarder (socat)
passes port 80 into the host's namespace; the test's PowerDNS (pebble's resolver) names it for
the gig's domain, added by the test itself since the inventory has no [producer].
"""

import shutil
import subprocess

import pytest

from tests.fleet.test_acme import https
from tests.support.deploying import DOMAIN, make_stage
from tests.support.producer_services import ZONE, loopback_address, stop

pytestmark = pytest.mark.fleet

ROOT = "/srv/backstage/acmehttp"


@pytest.fixture(scope="module")
def http01_stage(tmp_path_factory, powerdns, pebble):
    work = tmp_path_factory.mktemp("acme-http01")
    stage = make_stage(work, "acmehttp", {"h1": 'roles = ["web"]'})
    address = loopback_address()
    ip, socat = shutil.which("ip"), shutil.which("socat")
    into_host = work / "into-h1"  # socat's EXEC address takes no colons: a script does
    into_host.write_text(f"#!/bin/sh\nexec {ip} netns exec {stage.fleet.host('h1').netns} "
                         f"{socat} STDIO TCP:127.0.0.1:80\n")
    into_host.chmod(0o755)
    forwarder = subprocess.Popen([socat, f"TCP-LISTEN:80,bind={address},reuseaddr,fork",
                                  f"EXEC:{into_host}"], stdin=subprocess.DEVNULL)
    try:
        powerdns.add_record(DOMAIN, "A", [address])
        text = stage.inventory.read_text().replace(f'domains = ["{DOMAIN}"]',
                                                   f'domains = ["{DOMAIN}"]\ntls = "acme"')
        stage.inventory.write_text(text + f'\n[acme]\ndirectory = "{pebble.directory}"\n'
                                   f'email = "ops@{ZONE}"\nca_bundle = "{pebble.tls_ca}"\n'
                                   'challenge = "http-01"\n')
        stage.fleet.run("h1", "cat > /tmp/pebble-root.pem", input=pebble.root())
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stop(forwarder)
        stage.fleet.stop()


def test_the_http01_certificate_serves_the_gig_and_its_answers_are_withdrawn(http01_stage,
                                                                             pebble):
    stage = http01_stage
    assert https(stage, "h1") == "200"
    assert pebble.orders() == 1
    assert stage.fleet.run("h1", f"ls -A {ROOT}/acme-challenge").stdout == ""
    # Plain HTTP still sends visitors to HTTPS; only the challenge path is answered there.
    status, _ = stage.fleet.http("h1", "/", host_header=DOMAIN)
    assert status == 301


def test_renew_certs_force_orders_again_through_port_80(http01_stage, pebble):
    stage = http01_stage
    stage.cli("renew-certs", "--force")
    assert pebble.orders() == 2
    assert https(stage, "h1") == "200"
