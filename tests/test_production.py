"""The Python API (``backstage.Production``) and what it shares with the tasks, without hosts:
finding the inventory, loading, bad input, reports. Fleet tests of the API are in
tests/test_production_fleet.py."""

from pathlib import Path

import pytest

from backstage.errors import HostsFailed, UsageError
from backstage.model.locate import find_inventory
from tests.support.inventories import example_inventory


@pytest.fixture
def inventories(tmp_path, monkeypatch):
    """A working directory with ``inventories/``, and no $BACKSTAGE_INVENTORY."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BACKSTAGE_INVENTORY", raising=False)
    (tmp_path / "inventories").mkdir()
    return tmp_path / "inventories"


def test_find_inventory_a_path_a_name_the_variable_or_the_only_one(inventories, monkeypatch):
    (inventories / "shop.toml").write_text("")
    assert find_inventory("inventories/shop.toml") == Path("inventories/shop.toml")
    assert find_inventory(Path("elsewhere.toml")) == Path("elsewhere.toml")
    assert find_inventory("shop") == Path("inventories/shop.toml")
    assert find_inventory() == Path("inventories/shop.toml")  # the only one
    monkeypatch.setenv("BACKSTAGE_INVENTORY", "staging")
    assert find_inventory() == Path("inventories/staging.toml")


@pytest.mark.parametrize(("files", "value", "message"), [
    ([], None, "--inventory: name an inventory file or production (none found in ./inventories/)"),
    (["a.toml", "b.toml"], None,
     "--inventory: name an inventory file or production (several in ./inventories/)"),
    (["a.toml"], "", "--inventory: empty; give a value, or leave --inventory out for its default"),
    (["a.toml"], " ", "--inventory: empty; give a value, or leave --inventory out for its default"),
])
def test_find_inventory_errors_are_one_line_naming_the_argument(inventories, files, value,
                                                                message):
    for name in files:
        (inventories / name).write_text("")
    with pytest.raises(UsageError) as info:
        find_inventory(value)
    assert str(info.value) == message
    with pytest.raises(UsageError) as info:
        find_inventory(value, "inventory")
    assert str(info.value) == message.replace("--inventory", "inventory")


def test_the_venue_api_finds_a_hosts_inventory_by_the_same_rule(inventories):
    """``Venue(..., host=, production=)`` opens ``inventories/<production>.toml``, as tasks do."""
    from backstage.errors import InventoryError
    from backstage.venues.place import open_place

    with pytest.raises(InventoryError, match=r"inventories/staging.toml: no such inventory file"):
        open_place("h1", production="staging")
    with pytest.raises(UsageError, match=r"^inventory: name an inventory file or production"):
        open_place("h1")


# --- Production, with hosts that cannot be reached -----------------------------------------

INVENTORY = example_inventory({"web1": "web", "web2": "web"})


@pytest.fixture
def shop(inventories):
    """``inventories/shop.toml``, whose ssh_config sends every connection to a ProxyCommand
    that records the host and exits: a host "contacted" is written down, none is reached."""
    (inventories / "shop.toml").write_text(INVENTORY)
    (inventories / "known_hosts").write_text("")
    contacted = inventories.parent / "contacted"
    (inventories / "ssh_config").write_text(
        f"Host *\n  ProxyCommand /bin/sh -c 'echo %h >> {contacted}'\n")
    return contacted


def test_load_takes_a_path_a_production_name_or_nothing(shop):
    from backstage import Production

    for argument in ("inventories/shop.toml", "shop", None):
        production = Production.load(argument)
        assert production.name == "shop" and production.path.name == "shop.toml"
    assert repr(production) == "Production('shop', path='inventories/shop.toml')"
    assert production.summary() == ("inventories/shop.toml: production 'shop' is valid: "
                                    "2 hosts, 1 venues, 1 acts, 0 gigs")


@pytest.mark.parametrize(("call", "message"), [
    (lambda p: p.deploy("storefrnt"), r"unknown act 'storefrnt' .*did you mean 'storefront'"),
    (lambda p: p.deploy("storefront", hosts=""), r"--hosts: empty"),
    (lambda p: p.deploy("storefront", hosts=["web3"]), r"unknown host 'web3'"),
    (lambda p: p.deploy("storefront", serial=""), r"--serial: empty"),
    (lambda p: p.deploy("storefront", serial="0%", dry_run=True), r"--serial: "),
    (lambda p: p.deploy("storefront", max_fail=-1), r"--max-fail: "),
    (lambda p: p.deploy("storefront", parallel=0), r"--parallel: .*'0'"),
    (lambda p: p.plan("nope"), r"unknown act 'nope'"),
    (lambda p: p.rollback("storefront", to=""), r"--to: empty"),
    (lambda p: p.status("nope"), r"unknown act 'nope'"),
    (lambda p: p.history(limit="abc"), r"--limit: .*'abc'"),
    (lambda p: p.stop("nope"), r"unknown act 'nope'"),
    (lambda p: p.book_gig("nope"), r"unknown gig 'nope'"),
    (lambda p: p.setup_stage(hosts=","), r"--hosts: empty"),
], ids=["act", "hosts-empty", "hosts-unknown", "serial-empty", "serial-zero-dry-run",
        "max-fail", "parallel", "plan-act", "to-empty", "status-act", "limit", "stop-act",
        "gig", "setup-hosts"])
def test_bad_input_raises_a_usage_error_before_any_host_is_contacted(shop, call, message):
    from backstage import Production

    with pytest.raises(UsageError, match=message):
        call(Production.load("shop"))
    assert not shop.exists(), shop.read_text()


def test_the_api_prints_nothing_and_reports_each_host(shop, capfd):
    """Silent by default: hosts that cannot be reached are in the report, not on stderr."""
    from backstage import Production

    p = Production.load("shop")
    status, history, plan = p.status(), p.history(), p.plan("storefront")
    stopped = p.stop("storefront", hosts="web2")
    assert capfd.readouterr() == ("", "")
    assert sorted(shop.read_text().split()) == ["web1", "web1", "web1", "web2", "web2", "web2",
                                                "web2"]
    assert (status.exit_code, history.exit_code, plan.exit_code, stopped.exit_code) == (3,) * 4
    assert set(status.as_dict()) == {"web1", "web2"}
    entry = status.as_dict()["web1"]["storefront"]
    assert entry["unreachable"] is True and entry["error"].startswith("web1: cannot connect")
    assert history.as_dict()["entries"] == [] and set(history.as_dict()["errors"]) == {"web1",
                                                                                        "web2"}
    assert plan.text.splitlines()[0].startswith("web1: storefront: unreachable: cannot connect")
    assert stopped.as_dict() == {"production": "shop", "exit_code": 3, "act": "storefront",
                                 "action": "stop", "hosts": {"web2": {
                                     "error": str(stopped.errors["web2"]), "unreachable": True}}}
    with pytest.raises(HostsFailed) as info:
        stopped.check()
    assert info.value.summary == "1 of 1 hosts unreachable: web2"


def test_progress_goes_to_stderr_when_asked(shop, capfd):
    from backstage import Production

    Production.load("shop", progress=True).status(hosts="web1")
    out, err = capfd.readouterr()
    assert out == "" and "web1" in err and "cannot connect" in err
