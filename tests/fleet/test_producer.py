"""The Producer on real parts: a fleet of two hosts, a real PowerDNS (its HTTP API and DNS on
a loopback address) asked with dig, and the ``backstage`` program as a user runs it."""

import re

import pytest

from backstage import Production
from tests.support.deploying import DOMAIN, make_stage
from tests.support.producer_services import ZONE

pytestmark = pytest.mark.fleet

WWW = f"www.{ZONE}"
HAND_MADE = f"mail.{ZONE}"
ADDRESSES = {"h1": "192.0.2.1", "h2": "192.0.2.2"}  # only ever data in records: never contacted


def producer_table(api_url: str, secrets: str) -> str:
    return (f'\n[producer]\napi_url = "{api_url}"\nzones = ["{ZONE}"]\n'
            f'secrets = "{secrets}"\napi_key_secret = "PDNS_API_KEY"\nttl = 60\n')


def with_producer(stage, powerdns, api_url=None, key=None) -> None:
    """Give the stage's inventory a [producer] (its key in a secrets file of its own) and a
    second domain on gig shop."""
    secrets = stage.work / "producer.env"
    secrets.write_text(f"PDNS_API_KEY={key or powerdns.api_key}\n")
    text = stage.inventory.read_text().replace(f'domains = ["{DOMAIN}"]',
                                               f'domains = ["{DOMAIN}", "{WWW}"]')
    text = re.sub(r"\n\[producer\].*?(?=\n\[|\Z)", "", text, flags=re.DOTALL)
    stage.inventory.write_text(text + producer_table(api_url or powerdns.api_url, secrets))


@pytest.fixture(scope="module")
def dns_stage(tmp_path_factory, powerdns):
    """The example act deployed on h1 and h2, with a Producer, and a record made by hand."""
    work = tmp_path_factory.mktemp("producer")
    hosts = {name: f'roles = ["web"]\npublic_address = "{address}"'
             for name, address in ADDRESSES.items()}
    stage = make_stage(work, "dnsshop", hosts)
    try:
        powerdns.add_record(HAND_MADE, "A", ["198.51.100.25"])
        with_producer(stage, powerdns)
        text = stage.inventory.read_text()  # the act plays on the hosts of role web
        stage.inventory.write_text(text.replace('settings = "storefront.settings"\n',
                                                'settings = "storefront.settings"\n'
                                                'roles = ["web"]\n'))
        stage.cli("setup-stage")
        yield stage
    finally:
        stage.fleet.stop()


def test_records_follow_the_gig_across_deploy_move_and_cancel(dns_stage, powerdns):
    stage = dns_stage
    # deploy-act's gig step makes both domains' records: both hosts' addresses.
    stage.cli("deploy-act", "storefront")
    both = sorted(ADDRESSES.values())
    assert powerdns.dig(DOMAIN) == both and powerdns.dig(WWW) == both
    assert powerdns.dig(HAND_MADE) == ["198.51.100.25"]
    listing = stage.cli("dns").stdout
    assert f"{DOMAIN}. A  match" in listing and f"{WWW}. A  match" in listing, listing

    # Again: nothing to change, and no request beyond the read.
    patches = powerdns.requests_made("PATCH")
    report = Production.load(stage.inventory).book_gig("shop")
    assert report.exit_code == 0 and report.dns == []
    assert powerdns.requests_made("PATCH") == patches

    # h2 leaves the role: plan shows the DNS difference, book-gig makes it, one PATCH.
    text = stage.inventory.read_text()
    stage.inventory.write_text(text.replace('[hosts.h2]\nroles = ["web"]', "[hosts.h2]"))
    plan = stage.cli("plan", "storefront").stdout
    assert f"dns: {DOMAIN}. A: 192.0.2.1, 192.0.2.2 -> 192.0.2.1" in plan, plan
    assert powerdns.requests_made("PATCH") == patches
    stage.cli("book-gig", "shop")
    assert powerdns.dig(DOMAIN) == ["192.0.2.1"] and powerdns.dig(WWW) == ["192.0.2.1"]
    assert powerdns.requests_made("PATCH") == patches + 1

    # Cancelled: the records go; the hand-made one stays through all of it.
    stage.cli("cancel-gig", "shop")
    assert powerdns.dig(DOMAIN) == [] and powerdns.dig(WWW) == []
    assert powerdns.dig(HAND_MADE) == ["198.51.100.25"]
    stage.inventory.write_text(text)


def gig_files(stage) -> dict[str, str]:
    """Each host's gig server blocks (names and contents)."""
    return {h: stage.fleet.run(h, "cat /etc/nginx/sites-enabled/backstage-* 2>/dev/null; true")
            .stdout for h in ADDRESSES}


@pytest.mark.parametrize("fault", ["wrong key", "unreachable"])
def test_a_producer_fault_is_one_line_and_changes_nothing(dns_stage, powerdns, fault):
    stage = dns_stage
    stage.cli("cancel-gig", "shop")
    before = gig_files(stage)
    if fault == "wrong key":
        with_producer(stage, powerdns, key="not-the-key")
    else:  # a loopback address nothing listens on
        with_producer(stage, powerdns, api_url=f"http://{powerdns.address}:9")
    try:
        for task in ("book-gig", "cancel-gig"):
            done = stage.cli(task, "shop", check=False)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 1 and len(lines) == 1, done.stderr
            assert lines[0].startswith("backstage: error: producer http://"), lines
            assert ("refused the API key" if fault == "wrong key" else "cannot reach") \
                in lines[0]
            assert "not-the-key" not in done.stderr
        assert gig_files(stage) == before
        assert powerdns.dig(DOMAIN) == [] and powerdns.dig(HAND_MADE) == ["198.51.100.25"]
    finally:
        with_producer(stage, powerdns)


def test_remove_act_takes_its_gigs_records_and_leaves_a_hand_made_one(dns_stage, powerdns):
    """Issue 21: ``remove-act`` is the other way a gig's records go (after ``cancel-gig``)."""
    stage = dns_stage
    stage.cli("book-gig", "shop")
    assert powerdns.dig(DOMAIN) == sorted(ADDRESSES.values())
    stage.cli("remove-act", "storefront")
    assert powerdns.dig(DOMAIN) == [] and powerdns.dig(WWW) == []
    assert powerdns.dig(HAND_MADE) == ["198.51.100.25"]
