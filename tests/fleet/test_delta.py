"""Deltas on a real fleet host: a one-line change to a project holding 1 MiB of other files
sends a small fraction of it, removed files are gone, and the release is the source tree."""

import hashlib
import os
import re

import pytest

from backstage.artefacts.bundle import source_files
from tests.support.deploying import deployed

pytestmark = pytest.mark.fleet
PRODUCTION = "delta"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOME = "greetings/templates/greetings/home.html"
TOTALS = re.compile(r"^h1\s+(\d+) remote commands, ([0-9.]+) KiB sent$", re.MULTILINE)


def deploy(stage) -> tuple[int, float, str]:
    """Deploy with --verbose: remote commands, KiB sent, and the output."""
    done = stage.cli("deploy-act", "storefront", "--verbose")
    commands, kib = TOTALS.search(done.stderr).groups()
    return int(commands), float(kib), done.stderr


def host_files(stage, folder: str) -> dict[str, str]:
    """Relative path -> sha256 of each file under a folder of h1 (collectstatic's output, the
    settings overlay Backstage adds and bytecode aside), as the host sees them."""
    script = (f"cd {folder} && find . \\( -path ./.backstage-static -o -path "
              "./.backstage-settings -o -name __pycache__ \\) -prune -o "
              "-type f -print0 | xargs -0 sha256sum")
    out = stage.fleet.run("h1", ["bash", "-c", script]).stdout
    return {path.removeprefix("./"): digest
            for digest, path in (line.split(None, 1) for line in out.splitlines())}


def local_files(source) -> dict[str, str]:
    return {str(p.relative_to(source)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in source_files(source)}


def test_one_line_change_sends_the_change_not_the_project(tmp_path_factory):
    with deployed(tmp_path_factory.mktemp("delta"), PRODUCTION) as stage:
        blob = stage.source / "assets" / "blob.bin"
        blob.parent.mkdir()
        blob.write_bytes(os.urandom(1024 * 1024))
        (stage.source / "greetings" / "obsolete.py").write_text("OLD = True\n")
        commands, kib, _ = deploy(stage)
        assert kib > 1024  # the blob went up once (random bytes do not compress)

        home = stage.source / HOME
        home.write_text(home.read_text().replace("<h1>", "<h1>Delta ", 1))
        (stage.source / "greetings" / "obsolete.py").unlink()
        commands, kib, output = deploy(stage)
        assert commands <= 4, output
        assert kib < 100, output  # command text (the host-side helper, thrice) dominates
        assert "1 changed, 1 removed from tree" in output

        status, body = stage.page("/")
        assert status == 200 and "<h1>Delta " in body
        live = stage.fleet.run("h1", ["readlink", "-f", f"{ROOT}/acts/storefront/current"])
        release = live.stdout.strip()
        assert host_files(stage, release) == local_files(stage.source)
        assert "greetings/obsolete.py" not in host_files(stage, release)
        # The release shares its files with its tree (hard links, nothing copied).
        suffix = release.rsplit("-", 1)[1]
        tree = stage.fleet.run("h1", f"ls -d {ROOT}/trees/{suffix}*").stdout.strip()
        assert host_files(stage, tree) == local_files(stage.source)
        inodes = stage.fleet.run("h1", ["stat", "-c", "%i %h", f"{release}/assets/blob.bin",
                                        f"{tree}/assets/blob.bin"]).stdout.split("\n")
        assert inodes[0] == inodes[1] and int(inodes[0].split()[1]) >= 2

        commands, kib, output = deploy(stage)  # nothing changed
        assert commands == 1, output
