"""Test helpers around :mod:`tests.support.testbed`: skip where fleets cannot run."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backstage.sandbox.fleet import fleet_available
from backstage.sandbox.machines import machines_available
from tests.support.fleet_fixtures import RUN_PREFIX
from tests.support.testbed import (  # noqa: F401  (re-exported for the tests)
    DOMAIN,
    EXAMPLE,
    REPO,
    Load,
    Stage,
    backstage,
    processes,
)
from tests.support.testbed import make_stage as _make_stage


def make_stage(work: Path, production: str, hosts: dict[str, str], users=(), **options) -> Stage:
    """A testbed stage for this test run, or a skip with the reason fleets cannot run here."""
    reason = fleet_available() or (machines_available() if options.get("image") else None)
    if reason:
        pytest.skip(reason)
    return _make_stage(work, production, hosts, users, prefix=RUN_PREFIX, **options)


@contextmanager
def deployed(work: Path, production: str) -> Iterator[Stage]:
    """One host, "h1", staged with the example act deployed; stopped afterwards."""
    stage = make_stage(work, production, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def settled(stage: Stage, production: str, act: str = "storefront", host: str = "h1") -> str:
    """Wait until only the live release's vassal is enabled (the old one is retired in the
    background after a deploy); return the live release."""
    root = f"/srv/backstage/{production}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = stage.fleet.run(host, ["ls", f"{root}/vassals"]).stdout.split()
        if sum(n.endswith(".ini") for n in names) == 1:
            break
        time.sleep(0.1)
    link = stage.fleet.run(host, ["readlink", f"{root}/acts/{act}/current"]).stdout
    return link.strip().rsplit("/", 1)[1]



def interruptible(argv: list[str]) -> list[str]:
    """A command a test interrupts with SIGINT, started with Ctrl-C's default handling even
    when the test run itself inherited SIGINT ignored (a background job of a shell without job
    control does, and Python then installs no KeyboardInterrupt handler): a small Python
    resets it, then becomes the command (an ignored signal stays ignored across exec)."""
    reset = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", reset, *argv]
