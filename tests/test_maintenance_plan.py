"""``maintenance`` without a host: what its command does in what order, when it installs gig
files, the page's escaping, and the arguments refused before any host is contacted."""

import pytest

from backstage.errors import UsageError
from backstage.operations.lock import new_lock
from backstage.operations.maintenance import plan_maintenance
from backstage.production import Production
from backstage.render import Renderer
from backstage.util import sha256
from tests.test_operations import (
    ACT,
    HostState,
    production,  # noqa: F401  (the fixture shop asks for)
)

shop = pytest.fixture(name="shop")(lambda request: request.getfixturevalue("production"))


def plan(shop, state, switch, message=None):
    holder = new_lock("maintenance", ACT, message)
    return plan_maintenance(shop, state.layout, state.observed(), Renderer(shop), ACT, switch,
                            holder)


def with_current_gigs(shop) -> HostState:
    state = HostState(shop)
    renderer = Renderer(shop)
    for gig in shop.gigs_of(ACT):
        state.data["files"][state.layout.gig_conf(gig)] = sha256(renderer.gig(state.layout, gig))
    return state


def test_on_writes_the_details_then_the_page_and_reloads_nothing(shop):
    state = with_current_gigs(shop)
    step, gigs = plan(shop, state, "on", "Back at <b>noon</b>")
    layout = state.layout
    assert gigs == [] and "nginx" not in step.command
    assert step.command.index(layout.maintenance_info(ACT)) \
        < step.command.index(layout.maintenance_page(ACT) + ".backstage-new")
    assert "Back at &lt;b&gt;noon&lt;/b&gt;" in step.command
    assert "maintenance on" in step.command and layout.history in step.command


def test_off_removes_the_page_first(shop):
    state = with_current_gigs(shop)
    step, _ = plan(shop, state, "off")
    layout = state.layout
    assert step.command.index(f"rm -f -- {layout.maintenance_page(ACT)}") \
        < step.command.index(f"rm -f -- {layout.maintenance_info(ACT)}")


def test_an_old_gig_file_is_installed_before_the_switch(shop):
    state = HostState(shop)  # no gig file yet: the switch would not be tested for
    step, gigs = plan(shop, state, "on")
    assert gigs == [state.layout.gig_conf(g) for g in shop.gigs_of(ACT)]
    assert step.command.index("nginx") < step.command.index(state.layout.maintenance_page(ACT))


def test_the_gig_tests_for_the_page_and_serves_it_with_retry_after(shop):
    state = HostState(shop)
    text = Renderer(shop).gig(state.layout, shop.gigs_of(ACT)[0])
    assert f"if (-f {state.layout.maintenance_page(ACT)}) {{\n        return 503;" in text
    assert "add_header Retry-After 300 always;" in text


@pytest.mark.parametrize("switch, message, error", [
    ("sideways", None, "maintenance: say on or off, not 'sideways'"),
    ("off", "why", "maintenance off takes no --message"),
    ("on", " ", "--message: empty"),
])
def test_bad_arguments_are_refused_before_any_host(shop, switch, message, error):
    with pytest.raises(UsageError, match=error):
        Production(shop).maintenance(switch, ACT, message=message)
