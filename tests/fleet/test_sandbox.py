"""``python -m backstage.sandbox``: the demo's host outlives the command that started it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backstage.sandbox.fleet import NETNS_DIR, fleet_available

pytestmark = pytest.mark.fleet


def sandbox(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backstage.sandbox", *args, "--dir", str(repo)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ended(pid: int, timeout: float = 5) -> bool:
    """Whether pid exits within timeout (a zombie has exited; reaping is its parent's job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def test_up_status_ssh_up_again_down(tmp_path):
    if reason := fleet_available():
        pytest.skip(reason)
    workdir = tmp_path / ".backstage" / "sandbox"
    try:
        up = sandbox(tmp_path, "up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("stage1 is up: ")
        saved = json.loads((workdir / "fleet.json").read_text())["hosts"]["stage1"]
        netns, pid = saved["netns"], saved["pid"]
        assert (NETNS_DIR / netns).exists()

        status = sandbox(tmp_path, "status")
        assert status.returncode == 0, status.stderr
        assert f"stage1 up: netns {netns}, pid {pid};" in status.stdout

        # `up` has exited; its host lives on in a session of its own, away from our terminal.
        unshare = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        assert os.getsid(unshare) == unshare != os.getsid(0)
        ssh = subprocess.run(
            ["ssh", "-F", str(workdir / "ssh_config"), "stage1", "hostname"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ssh.stdout == "stage1\n", ssh.stderr

        env_file = workdir / "storefront.env"
        secret = env_file.read_text()
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert secret.startswith("DJANGO_SECRET_KEY=") and len(secret.strip()) >= 18 + 50

        again = sandbox(tmp_path, "up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"stage1 already up: netns {netns}, pid {pid};")
        assert env_file.read_text() == secret

        down = sandbox(tmp_path, "down")
        assert (down.returncode, down.stdout) == (0, "stage1 stopped\n"), down.stderr
        assert ended(pid) and ended(unshare)
        assert not (NETNS_DIR / netns).exists()
        assert not (workdir / "fleet.json").exists()

        assert sandbox(tmp_path, "status").returncode == 3
        assert sandbox(tmp_path, "down").stdout == "stage1 not running\n"
    finally:
        sandbox(tmp_path, "down")
