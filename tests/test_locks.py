"""Locks per act (issue 12, finding 11), on this machine: the lock commands, a venue another
deploy is building, and which locks a deploy takes. The deploys side by side on a fleet host
are tests/fleet/test_locks.py."""

import fcntl
import os
import subprocess
import time
from pathlib import Path

from backstage.commands import lock, venue
from backstage.commands.shell import Script
from backstage.model import Layout, load_production
from backstage.operations.deploy import deploy_locks
from backstage.transport.local import LocalTransport
from tests.test_commands import made, user_layout, wheels_tar, write_exe
from tests.test_inventory import base_inventory, make_project, write_inventory


def holder(name: str) -> dict:
    return {"by": name, "pid": 1, "command": "deploy-act", "token": f"token-{name}"}


def test_a_held_lock_refuses_naming_its_holder_and_frees_the_locks_taken_before(tmp_path):
    layout = Layout("shop", "user", str(tmp_path), 8080)
    transport = LocalTransport()
    first = transport.run(lock.acquire(Script(), layout, ["database/users"], holder("ada")).text())
    assert first.ok, first.stderr
    second = transport.run(lock.acquire(Script(), layout, ["act/shop", "database/users"],
                                        holder("bob")).text())
    assert second.exit_code == lock.LOCKED_EXIT
    assert lock.held(second.stderr) == ("database/users", holder("ada"))
    assert not Path(layout.lock_dir("act/shop")).exists()  # taken first, freed on the way out
    assert sorted(p.name for p in Path(layout.lock_dir("act")).parent.glob("*/*")) == ["users"]

    transport.run(lock.release(Script(), layout, ["database/users"], "token-bob").text())
    assert Path(layout.lock_info("database/users")).exists()  # not bob's to free
    transport.run(lock.release(Script(), layout, ["database/users"], "token-ada").text())
    assert not Path(layout.lock_dir("database/users")).exists()


def test_a_venue_another_deploy_is_building_is_waited_for_then_reused(tmp_path):
    """Acts sharing a venue deploy at once: one builds it, the other waits, then finds it built
    (this fake interpreter fails if it is ever asked to build)."""
    layout = made(user_layout(tmp_path))
    python = write_exe(tmp_path / "fake" / "python", "#!/bin/sh\nexit 9\n")
    held = Path(layout.venue_lock("shop"))
    held.parent.mkdir(parents=True)
    with held.open("w") as other_build:
        fcntl.flock(other_build, fcntl.LOCK_EX)
        waiting = subprocess.Popen(venue.build_venue(Script(), layout, "shop", "d1", str(python))
                                   .text(), shell=True, stdin=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        waiting.stdin.write(wheels_tar({"requirements-d1.txt": b"alpha==1.0\n"}))
        waiting.stdin.close()
        time.sleep(1)
        assert waiting.poll() is None  # waiting for the other build
        Path(layout.venue_dir("shop", "d1")).mkdir(parents=True)
        Path(layout.venue_dir("shop", "d1"), venue.COMPLETE_MARKER).touch()
    assert waiting.wait(timeout=30) == 0, waiting.stderr.read()
    assert os.readlink(layout.venue_link("shop")) == "shop-d1"


def test_a_deploy_locks_its_act_and_the_databases_other_acts_also_migrate(tmp_path):
    data = base_inventory()
    data["acts"]["storefront"]["user"] = "shop-people"  # storefront and board share users
    data["acts"]["board"] = {**data["acts"]["storefront"], "databases": ["users", "notes"]}
    data["acts"]["api"] = {**data["acts"]["storefront"], "databases": ["greetings"]}
    data["databases"] = {"users": {}, "notes": {}, "greetings": {"migrate_with": "api"}}
    data["acts"]["storefront"]["databases"] = ["users", "greetings"]
    production = load_production(write_inventory(make_project(tmp_path), data))
    # users: migrated by storefront's and board's deploys; greetings and notes: by one act's.
    assert deploy_locks(production, "storefront") == ["act/storefront", "database/users"]
    assert deploy_locks(production, "board") == ["act/board", "database/users"]
    assert deploy_locks(production, "api") == ["act/api"]
