"""The Producer's model and pure plan (no server): ``[producer]`` validation, records wanted
from the inventory, and the PATCH bodies that make PowerDNS hold them."""

import pytest

from backstage.errors import ProducerError
from backstage.model import load_production
from backstage.operations import dns
from tests.test_inventory import base_inventory, expect_error, make_project, write_inventory


def producer_inventory(root, **gig) -> dict:
    """Two web hosts with public addresses; gig ``shop`` at two domains of zone shop.test."""
    (root / "inventories" / "producer.env").write_text("PDNS_KEY=s3cret-key\n")
    data = base_inventory()
    data["hosts"] = {"web1": {"roles": ["web"], "public_address": "192.0.2.1",
                              "public_address6": "2001:db8::1"},
                     "web2": {"roles": ["web"], "public_address": "192.0.2.2"}}
    data["gigs"] = {"shop": {"act": "storefront", "domains": ["shop.test", "www.shop.test"],
                             **gig}}
    data["producer"] = {"api_url": "http://127.0.0.1:8081", "zones": ["shop.test"],
                        "secrets": "producer.env", "api_key_secret": "PDNS_KEY", "ttl": 60}
    return data


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def load(project, data):
    return load_production(write_inventory(project, data))


def test_a_producer_inventory_loads_and_reads_its_key_from_the_secrets_file(project):
    production = load(project, producer_inventory(project))
    assert production.producer.zone_of("www.shop.test") == "shop.test"
    assert production.producer.api_key(production.path).get_secret_value() == "s3cret-key"
    assert "s3cret" not in repr(production.producer)


def test_a_gig_domain_outside_every_zone_is_an_error_naming_gig_and_domain(project):
    data = producer_inventory(project)
    data["gigs"]["shop"]["domains"] = ["shop.example.org"]
    error = expect_error(write_inventory(project, data))
    assert error.key == "gigs.shop.domains" and "'shop.example.org'" in error.reason
    data["gigs"]["shop"]["dns"] = False
    assert load(project, data).gigs["shop"].dns is False


def test_a_host_of_a_gig_needs_a_public_address(project):
    data = producer_inventory(project)
    del data["hosts"]["web2"]["public_address"]
    assert expect_error(write_inventory(project, data)).key == "hosts.web2.public_address"


def test_bad_addresses_and_api_key_in_the_inventory_are_refused(project):
    data = producer_inventory(project)
    data["hosts"]["web1"]["public_address"] = "192.0.2.300"
    assert expect_error(write_inventory(project, data)).key == "hosts.web1.public_address"
    data = producer_inventory(project)
    data["producer"]["api_key"] = "s3cret-key"
    assert expect_error(write_inventory(project, data)).key == "producer.api_key"


def test_acme_tls_needs_an_acme_section(project):
    data = producer_inventory(project, tls="acme")
    assert expect_error(write_inventory(project, data)).key == "gigs.shop.tls"


def test_wanted_records_are_the_act_hosts_addresses_per_domain(project):
    production = load(project, producer_inventory(project))
    assert dns.wanted(production, ["shop"]) == {
        ("shop.test.", "A"): ("192.0.2.1", "192.0.2.2"), ("shop.test.", "AAAA"): ("2001:db8::1",),
        ("www.shop.test.", "A"): ("192.0.2.1", "192.0.2.2"),
        ("www.shop.test.", "AAAA"): ("2001:db8::1",)}
    assert set(dns.wanted(production, ["shop"], booked=False).values()) == {()}


def zone(production, *rrsets):
    return {"shop.test": dns.read_zone(production, list(rrsets))}


def ours(production, name, rtype, contents, ttl=60):
    return {"name": name, "type": rtype, "ttl": ttl, "comments": [dns.mark(production)],
            "records": [{"content": c, "disabled": False} for c in contents]}


def test_booking_patches_each_zone_once_and_marks_the_rrsets(project):
    production = load(project, producer_inventory(project))
    plan = dns.plan_dns(production, dns.wanted(production, ["shop"]), zone(production))
    assert list(plan.patches) == ["shop.test"] and len(plan.patches["shop.test"]) == 4
    assert all(r["changetype"] == "REPLACE" and r["comments"] == [dns.mark(production)]
               for r in plan.patches["shop.test"])


def test_records_already_as_wanted_need_no_request(project):
    production = load(project, producer_inventory(project))
    have = zone(production, *(ours(production, n, t, c) for (n, t), c in
                              dns.wanted(production, ["shop"]).items()))
    plan = dns.plan_dns(production, dns.wanted(production, ["shop"]), have)
    assert plan.patches == {} and plan.changes == []


def test_a_host_leaving_the_role_leaves_the_records(project):
    data = producer_inventory(project)
    production = load(project, data)
    have = zone(production, ours(production, "shop.test.", "A", ["192.0.2.1", "192.0.2.2"]))
    data["hosts"]["web2"]["roles"] = []
    smaller = load(project, data)
    plan = dns.plan_dns(smaller, {("shop.test.", "A"): ("192.0.2.1",)}, have)
    assert [c.line for c in plan.changes] == ["shop.test. A: 192.0.2.1, 192.0.2.2 -> 192.0.2.1"]


def test_cancelling_deletes_only_rrsets_backstage_made(project):
    production = load(project, producer_inventory(project))
    have = zone(production, ours(production, "shop.test.", "A", ["192.0.2.1"]),
                {"name": "www.shop.test.", "type": "A", "ttl": 60, "comments": [],
                 "records": [{"content": "198.51.100.7", "disabled": False}]})
    plan = dns.plan_dns(production, dns.wanted(production, ["shop"], booked=False), have)
    assert plan.patches == {"shop.test": [{"name": "shop.test.", "type": "A",
                                           "changetype": "DELETE"}]}


def test_a_hand_made_record_where_a_gig_wants_its_own_is_refused(project):
    production = load(project, producer_inventory(project))
    have = zone(production, {"name": "www.shop.test.", "type": "A", "ttl": 60, "comments": [],
                             "records": [{"content": "198.51.100.7", "disabled": False}]})
    plan = dns.plan_dns(production, dns.wanted(production, ["shop"]), have)
    with pytest.raises(ProducerError, match=r"www\.shop\.test\. A has records Backstage did "):
        plan.check("http://127.0.0.1:8081")
    assert ("www.shop.test.", "A") not in {(r["name"], r["type"]) for r in plan.patches["shop.test"]}


def test_another_productions_records_are_not_ours(project):
    production = load(project, producer_inventory(project))
    theirs = ours(production, "shop.test.", "A", ["192.0.2.9"])
    theirs["comments"] = [{"content": "managed by Backstage, production other",
                           "account": "backstage"}]
    assert dns.read_zone(production, [theirs])[("shop.test.", "A")].ours is False


def test_compare_lists_wanted_against_actual(project):
    production = load(project, producer_inventory(project))
    have = zone(production, ours(production, "shop.test.", "A", ["192.0.2.1", "192.0.2.2"]),
                ours(production, "www.shop.test.", "A", ["192.0.2.1"]))
    rows = {(r["name"], r["type"]): r["state"]
            for r in dns.compare(dns.wanted(production, ["shop"]), have, production)}
    assert rows == {("shop.test.", "A"): "match", ("www.shop.test.", "A"): "differ",
                    ("shop.test.", "AAAA"): "missing", ("www.shop.test.", "AAAA"): "missing"}


def test_a_wildcard_gig_domain_gets_a_wildcard_record(project):
    data = producer_inventory(project)
    data["gigs"]["shop"]["domains"] = ["shop.test", "*.shop.test"]
    production = load(project, data)
    assert dns.wanted(production, ["shop"])[("*.shop.test.", "A")] == ("192.0.2.1", "192.0.2.2")
    data["gigs"]["shop"]["domains"] = ["*.*.shop.test"]
    assert expect_error(write_inventory(project, data)).key == "gigs.shop.domains.0"


def test_gig_states_say_match_missing_or_differ(project):
    production = load(project, producer_inventory(project))
    wanted = dns.wanted(production, ["shop"])
    assert dns.gig_states(production, zone(production)) == {"shop": "missing"}
    assert dns.gig_states(production, zone(production, *(ours(production, n, t, c) for (n, t), c
                                                        in wanted.items()))) == {"shop": "match"}
    assert dns.gig_states(production, zone(production, ours(production, "shop.test.", "A",
                                                            ["192.0.2.1"]))) == {"shop": "differ"}
