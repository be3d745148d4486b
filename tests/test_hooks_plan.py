"""Hooks without a host: the inventory's ``hooks`` table, the variables each hook gets, and
where a host hook goes in a deploy's steps."""

import copy

import pytest

from backstage.model import load_production
from backstage.operations.deploy import act_environment
from backstage.operations.hooks import variables
from tests.test_inventory import base_inventory, expect_error, make_project, write_inventory
from tests.test_operations import ACT, HostState, deploy, inputs


def shop(tmp_path, hooks: dict):
    data = copy.deepcopy(base_inventory())
    data["acts"][ACT]["hooks"] = hooks
    make_project(tmp_path)
    return write_inventory(tmp_path, data)


@pytest.mark.parametrize("hooks, key", [
    ({"before_swich": "true"}, "acts.storefront.hooks.before_swich"),
    ({"after_switch": ""}, "acts.storefront.hooks.after_switch"),
])
def test_a_bad_hook_is_named(tmp_path, hooks, key):
    assert key in str(expect_error(shop(tmp_path, hooks)))


def test_variables_of_a_hook(tmp_path):
    production = load_production(shop(tmp_path, {}))
    assert variables(production, ACT, "r2", None, ["h1", "h2"], "deployed", 12.34) == {
        "BACKSTAGE_PRODUCTION": "shop", "BACKSTAGE_ACT": ACT, "BACKSTAGE_RELEASE": "r2",
        "BACKSTAGE_PREVIOUS_RELEASE": "", "BACKSTAGE_HOSTS": "h1,h2",
        "BACKSTAGE_OUTCOME": "deployed", "BACKSTAGE_DURATION": "12.3"}


def test_host_hooks_go_in_their_phases_and_only_the_late_one_is_forgiven(tmp_path):
    production = load_production(shop(tmp_path, {"after_prepare": "echo prepared",
                                                 "before_switch": "echo ready",
                                                 "after_switch": "echo switched"}))
    state = HostState(production)
    plan = deploy(production, state, inputs(production),
                  act_environment(production, ACT, state.layout))
    prepared, started, switched = (plan.prepare[-1].command, plan.start[0].command,
                                   plan.switch[0].command)
    assert "echo prepared" in prepared and "echo ready" in started
    assert "echo switched" in switched
    assert "exit 1" in started[started.index("echo ready"):]
    assert "skipped (it failed" in switched and "the after_switch hook failed" not in switched


def test_no_hook_no_text(tmp_path):
    production = load_production(shop(tmp_path, {}))
    state = HostState(production)
    plan = deploy(production, state, inputs(production),
                  act_environment(production, ACT, state.layout))
    assert all("hook" not in step.command for step in [*plan.prepare, *plan.start, *plan.switch])
