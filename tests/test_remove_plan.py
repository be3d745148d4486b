"""``remove-act`` without a host: what its one command removes, keeps and gives to root,
and what it leaves to the other acts of the host (their venue, user and sqlite files)."""

import copy
import re

from backstage.model import Layout, load_production
from backstage.operations.lock import new_lock
from backstage.operations.remove import plan_remove
from tests.test_inventory import base_inventory, make_project, write_inventory
from tests.test_operations import HostState

HOST = "web1"


def names(text: str, path: str) -> bool:
    """Whether the command names ``path`` itself, not only paths inside it."""
    return re.search(re.escape(path) + r"(?![\w/.-])", text) is not None


def shop(tmp_path, second: dict | None = None):
    """The base inventory, with a second act ``api`` (``second``: its table) if given."""
    data = copy.deepcopy(base_inventory())
    if second is not None:
        data["acts"]["api"] = {**data["acts"]["storefront"], **second}
        data["databases"].update({d: {} for d in second.get("databases", [])})
    make_project(tmp_path)
    return load_production(write_inventory(tmp_path, data))


def command(production, act: str = "storefront", purge: bool = False) -> tuple[str, Layout]:
    state = HostState(production)
    state.data["venues"] = {"shop-abc123": {}, "shop-extra-def456": {}}
    state.data["files"][state.layout.gig_conf("shop")] = "digest"
    step = plan_remove(production, HOST, state.layout, state.observed(), act, purge,
                       new_lock("remove-act", act))
    return step.command, state.layout


def test_a_lone_act_goes_with_its_venue_and_user_and_its_data_becomes_roots(tmp_path):
    text, layout = command(shop(tmp_path))
    assert "userdel bs-shop-storefront" in text
    assert f"{layout.venues}/shop-abc123" in text and layout.venue_link("shop") in text
    assert "shop-extra-def456" not in text  # another venue whose name begins the same
    data = f"{layout.data}/users.sqlite3"
    assert f"chown -R -h root:root {data}" in text
    assert f"chown -R -h root:root {layout.media('storefront')}" in text
    assert not names(text, layout.act_dir("storefront"))
    # Traffic stops first: the gig's file goes, nginx checked and reloaded.
    assert text.index(layout.gig_conf("shop")) < text.index("nginx") < text.index("userdel")


def test_purge_deletes_the_act_folder_and_its_own_sqlite_files(tmp_path):
    text, layout = command(shop(tmp_path), purge=True)
    assert names(text, layout.act_dir("storefront")) and names(text, f"{layout.data}/users.sqlite3-wal")
    assert "chown" not in text


def test_what_another_act_uses_stays(tmp_path):
    production = shop(tmp_path, {"user": "bs-shop-storefront", "databases": ["users"]})
    text, layout = command(production, purge=True)
    assert "userdel" not in text and "shop-abc123" not in text
    assert "users.sqlite3" not in text
    assert names(text, layout.act_dir("storefront"))
