"""The Python API (``backstage.Production``) and what it shares with the tasks, without hosts:
finding the inventory, loading, bad input, reports. Fleet tests of the API are in
tests/test_fleet_api.py."""

import pytest

from backstage.errors import UsageError
from backstage.model.locate import find_inventory


@pytest.fixture
def inventories(tmp_path, monkeypatch):
    """A working directory with ``inventories/``, and no $BACKSTAGE_INVENTORY."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BACKSTAGE_INVENTORY", raising=False)
    (tmp_path / "inventories").mkdir()
    return tmp_path / "inventories"


def test_find_inventory_a_path_a_name_the_variable_or_the_only_one(inventories, monkeypatch):
    from pathlib import Path

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
