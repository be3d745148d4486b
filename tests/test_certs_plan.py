"""The pure part of ACME certificates: which are due, the DNS-01 TXT records, the host's
files and the command writing them (no server, no host)."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backstage.commands.gig import install_gigs, private_payload
from backstage.commands.shell import Script
from backstage.commands.stage import Services
from backstage.model import Layout, load_production
from backstage.operations import certs, dns
from tests.test_dns_plan import producer_inventory
from tests.test_inventory import make_project, write_inventory

NOW = datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC)


def certificate(names: list[str], days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
             .public_key(key.public_key()).serial_number(1)
             .not_valid_before(NOW - datetime.timedelta(days=1))
             .not_valid_after(NOW + datetime.timedelta(days=days))
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False).sign(key, hashes.SHA256()))
    return built.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_is_due_when_missing_expiring_or_for_other_names():
    domains = ("shop.test", "www.shop.test")
    assert certs.due(None, domains, 30, NOW)
    assert not certs.due(certificate(list(domains), 60), domains, 30, NOW)
    assert certs.due(certificate(list(domains), 29), domains, 30, NOW)
    assert certs.due(certificate(["shop.test"], 60), domains, 30, NOW)


def production(tmp_path):
    project = make_project(tmp_path)
    data = producer_inventory(project, tls="acme")
    data["acme"] = {"directory": "https://127.0.0.1:14000/dir", "email": "ops@shop.test"}
    return load_production(write_inventory(project, data))


def test_challenge_records_are_marked_txt_rrsets_in_one_patch_per_zone(tmp_path):
    prod = production(tmp_path)
    records = {"_acme-challenge.shop.test": ["abc"], "_acme-challenge.www.shop.test": ["def"]}
    published = certs.challenge_patches(prod, records)
    assert list(published) == ["shop.test"]
    assert published["shop.test"][0] == {
        "name": "_acme-challenge.shop.test.", "type": "TXT", "ttl": 1, "changetype": "REPLACE",
        "records": [{"content": '"abc"', "disabled": False}], "comments": [dns.mark(prod)]}
    withdrawn = certs.challenge_patches(prod, records, remove=True)
    assert {r["changetype"] for r in withdrawn["shop.test"]} == {"DELETE"}


def test_the_key_is_written_private_from_its_first_byte(tmp_path):
    prod = production(tmp_path)
    layout = Layout.for_host(prod.name, prod.hosts["web1"])
    files = certs.certificate_files(layout, "shop", ("CHAIN", "KEY"))
    assert list(files) == [layout.tls_certificate("shop"), layout.tls_key("shop")]
    script = install_gigs(Script(), layout, files, [], Services(), (layout.tls_key("shop"),))
    text = script.text()
    assert "KEY" not in text and "CHAIN" in text  # the key travels on stdin, never in argv
    assert f"install -d -m 700 {layout.tls_dir('shop')}" in text
    assert f"(umask 077 && dd bs=1 count=3 status=none of={layout.tls_key('shop')}" in text
    assert private_payload(files, (layout.tls_key("shop"),)) == b"KEY"


def test_status_warns_about_a_certificate_expiring_within_14_days():
    soon, later = certs.describe(certificate(["shop.test"], 10), NOW), \
        certs.describe(certificate(["shop.test"], 20), NOW)
    assert (soon["warn"], soon["days_left"], soon["issuer"]) == (True, 10, "shop.test")
    assert later["warn"] is False


def http01_production(tmp_path, domains=("shop.test",), challenge="http-01"):
    """An HTTP-01 production: [acme] and no [producer]."""
    project = make_project(tmp_path)
    data = producer_inventory(project, tls="acme")
    del data["producer"]
    data["gigs"]["shop"]["domains"] = list(domains)
    data["acme"] = {"directory": "https://127.0.0.1:14000/dir", "email": "ops@shop.test",
                    "challenge": challenge}
    return write_inventory(project, data)


def test_http01_needs_no_producer_and_port_80_serves_the_answers(tmp_path):
    from backstage.render import Renderer

    prod = load_production(http01_production(tmp_path))
    layout = Layout.for_host(prod.name, prod.hosts["web1"])
    renderer = Renderer(prod)
    where = f"alias {layout.acme_challenges}/;"
    assert where in renderer.default_server(layout, "web1")
    gig = renderer.gig(layout, "shop")
    assert gig.index(where) < gig.index("return 301 https://")  # the redirect server's
    step = certs.http01_answers(layout, {"tok_0123456789abcdef": ["tok_0123456789abcdef.xyz"]})
    assert f"{layout.acme_challenges}/tok_0123456789abcdef" in step.command
    withdraw = certs.http01_answers(layout, {"tok_0123456789abcdef": ["x"]}, remove=True)
    assert "rm -rf -- " in withdraw.command and "tok_0123456789abcdef" in withdraw.command


def test_http01_refuses_a_wildcard_domain_in_one_line(tmp_path):
    import pytest

    from backstage.errors import InventoryError

    with pytest.raises(InventoryError, match=r"gigs\.shop\.domains: domain '\*\.shop\.test': "
                                             "a wildcard certificate needs the DNS-01"):
        load_production(http01_production(tmp_path, ("shop.test", "*.shop.test")))


def test_dns01_still_needs_a_producer(tmp_path):
    import pytest

    from backstage.errors import InventoryError

    path = http01_production(tmp_path, challenge="dns-01")
    with pytest.raises(InventoryError, match=r"gigs\.shop\.tls: .*\[producer\] too"):
        load_production(path)


def test_a_gig_files_backup_is_a_dot_file_nginx_does_not_include(tmp_path):
    """A gig's copy kept during ``nginx -t`` was ``<gig>.conf.backstage-old`` beside it, which
    ``include sites-enabled/*`` read too: with the gig's own ``log_format`` twice, nginx
    refused every rewrite of a gig (a certificate renewed, a domain added)."""
    prod = production(tmp_path)
    layout = Layout.for_host(prod.name, prod.hosts["web1"])
    conf = layout.gig_conf("shop")
    text = install_gigs(Script(), layout, {conf: "server {}\n"}, [], Services()).text()
    folder, _, name = conf.rpartition("/")
    assert f"{folder}/.{name}.backstage-old" in text
    assert f"{conf}.backstage-old" not in text
