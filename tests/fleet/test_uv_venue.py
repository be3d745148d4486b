"""Venues built with uv where the host has it, with virtualenv + pip where it does not: two
fleet hosts, one with a uv of its own (in root's ``~/.local/bin``, on the PATH its SSH commands
see through ``~/.bashrc``), the other without."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deploying import DOMAIN, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "uv"
VENUES = f"/srv/backstage/{PRODUCTION}/venues"
# The uv wheel installed with the test extras (pyproject.toml) puts its binary beside Python.
UV = Path(sys.executable).parent / "uv"



def ssh(stage, host: str, command: str) -> subprocess.CompletedProcess:
    """A command as Backstage's commands run: over SSH, in root's login environment."""
    return subprocess.run(["ssh", "-F", str(stage.fleet.ssh_config), host, command],
                          capture_output=True, text=True, timeout=30, check=False)


def venue_config(stage, host: str) -> str:
    return stage.fleet.run(host, ["cat", f"{VENUES}/storefront/pyvenv.cfg"]).stdout


def test_venue_is_built_by_uv_where_present_and_by_pip_elsewhere(tmp_path):
    assert UV.exists(), f"{UV}: install the test extras (pip install -e '.[test]')"
    stage = make_stage(tmp_path, PRODUCTION, {"h1": 'roles = ["web"]', "h2": 'roles = ["web"]'})
    try:
        stage.give_tool("h2", UV)
        assert ssh(stage, "h2", "command -v uv").stdout == "/root/.local/bin/uv\n"
        assert ssh(stage, "h1", "command -v uv").returncode != 0
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        for host in ("h1", "h2"):
            status, body = stage.fleet.http(host, "/", host_header=DOMAIN)
            assert status == 200, body
        with_uv, without = venue_config(stage, "h2"), venue_config(stage, "h1")
        assert "\nuv = " in with_uv, with_uv
        assert "\nuv = " not in without, without
        pips = stage.fleet.run("h2", f"ls {VENUES}/storefront/bin/").stdout.split()
        assert "pip" not in pips and "python" in pips
        assert "pip" in stage.fleet.run("h1", f"ls {VENUES}/storefront/bin/").stdout.split()
    finally:
        stage.fleet.stop()
