"""Pytest fixtures for namespace test hosts (see backstage.sandbox.fleet)."""

import os
from pathlib import Path

import pytest

from backstage.sandbox.fleet import NETNS_DIR, Fleet, fleet_available

__all__ = ["RUN_PREFIX", "fleet", "fleet_factory", "no_leftover_fleet_namespaces"]

# Every network namespace this test run makes starts with this, so leftovers are attributable.
RUN_PREFIX = f"bs{os.getpid()}"


@pytest.fixture
def fleet_factory(tmp_path: Path):
    """``make(names=("h1",), users=())`` starts a Fleet in a tmp dir; all are stopped after the
    test. Skips, with the reason, where fleets cannot run (not root, tools missing)."""
    reason = fleet_available()
    if reason:
        pytest.skip(reason)
    fleets: list[Fleet] = []

    def make(names=("h1",), users=()) -> Fleet:
        fleet = Fleet(tmp_path / f"fleet{len(fleets)}", prefix=RUN_PREFIX)
        fleets.append(fleet)
        fleet.start(names, users=users)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()


@pytest.fixture
def fleet(fleet_factory) -> Fleet:
    """A fleet with one host, "h1"."""
    return fleet_factory()


@pytest.fixture(scope="session", autouse=True)
def no_leftover_fleet_namespaces():
    """At the end of the run, fail if any network namespace made by this run still exists."""
    yield
    mine = f"{RUN_PREFIX}-"
    left = sorted(p.name for p in NETNS_DIR.glob(mine + "*")) if NETNS_DIR.is_dir() else []
    assert not left, f"fleet network namespaces left behind: {left}"
