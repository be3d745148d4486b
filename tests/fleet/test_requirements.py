"""Requirements resolved on the workstation (issue 12, finding 10), on a fleet host: the host
receives only the resolved list, whatever the requirements file includes, constrains or names
as options, and a requirement that cannot be built here changes nothing on any host. Reading
and resolving the files is tests/test_requirements.py."""

import re
import subprocess
import sys

import pytest

from tests.support.deploying import make_stage
from tests.support.testbed import make_wheel
from tests.test_requirements import OPTIONS, RESOLVED_LINE

pytestmark = pytest.mark.fleet
PRODUCTION = "reqs"
ROOT = f"/srv/backstage/{PRODUCTION}"


def shipped_list(stage, digest: str) -> str:
    return stage.fleet.run("h1", ["cat", f"{ROOT}/wheelhouse/requirements-{digest}.txt"]).stdout


def venue_digest(stage) -> str:
    return stage.fleet.run("h1", ["readlink", f"{ROOT}/venues/storefront"]).stdout.strip() \
        .removeprefix("storefront-")


def in_venue(stage, code: str) -> str:
    return stage.fleet.run("h1", [f"{ROOT}/venues/storefront/bin/python", "-c", code]).stdout


def test_includes_constraints_and_options_never_reach_the_host(tmp_path, monkeypatch):
    """A deploy whose requirements.txt includes base.txt, is constrained by constraints.txt
    and names a dead index and find-links URL succeeds, and quickly: the host gets only the
    resolved list. Changing only base.txt builds a new venue; a comment in it does not."""
    monkeypatch.setenv("PIP_RETRIES", "0")  # the workstation's pip: one try of the dead URLs
    stage = make_stage(tmp_path, PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        wheels = tmp_path / "wheels"  # Django's wheels, and two of ours: no index needed
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels,
                        "-r", stage.source / "requirements.txt"], check=True)
        make_wheel(wheels, "marker-one", "1.0")
        make_wheel(wheels, "marker-one", "2.0")
        make_wheel(wheels, "marker-two", "1.0")
        (stage.source / "base.txt").write_text("Django>=5.2,<5.3\nmarker-one\n")
        (stage.source / "constraints.txt").write_text("marker-one<2\n")
        (stage.source / "requirements.txt").write_text(
            OPTIONS + "--find-links ../wheels\n-r base.txt\n-c constraints.txt\n")

        done = stage.cli("deploy-act", "storefront", "--verbose")
        venue_seconds = float(re.search(r"h1\s+venue\s+ok ([0-9.]+)s", done.stderr).group(1))
        print(f"venue step: {venue_seconds:.2f}s")
        assert venue_seconds < 30, done.stderr
        first = venue_digest(stage)
        listed = shipped_list(stage, first).splitlines()
        assert all(RESOLVED_LINE.match(line) for line in listed), listed
        assert any(line.startswith("marker-one==1.0 ") for line in listed), listed
        assert in_venue(stage, "import marker_one; print(marker_one.VERSION)") == "1.0\n"
        assert stage.page("/")[0] == 200

        (stage.source / "base.txt").write_text("Django>=5.2,<5.3\nmarker-one\nmarker-two\n")
        assert re.search(rf"^  venue    build {ROOT}/venues/storefront-(?!{first})\w+$",
                         stage.cli("plan", "storefront").stdout, re.MULTILINE)
        stage.cli("deploy-act", "storefront")
        assert venue_digest(stage) != first
        assert in_venue(stage, "import marker_two; print(marker_two.VERSION)") == "1.0\n"

        (stage.source / "base.txt").write_text("Django>=5.2,<5.3\nmarker-one\nmarker-two  # !\n")
        # A new release (base.txt is part of the source tree), in the same venue.
        assert "\n  venue    reuse the built venue\n" in stage.cli("plan", "storefront").stdout
    finally:
        stage.fleet.stop()


def test_an_unbuildable_vcs_requirement_is_refused_before_any_host_changes(tmp_path):
    stage = make_stage(tmp_path, PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        before = stage.fleet.run("h1", f"ls -R {ROOT}/wheelhouse {ROOT}/venues {ROOT}/state; "
                                       f"cat {ROOT}/state/history.jsonl").stdout
        (stage.source / "base.txt").write_text("git+file:///nonexistent/repo.git#egg=nothing\n")
        with (stage.source / "requirements.txt").open("a") as f:
            f.write("-r base.txt\n")
        refused = stage.cli("deploy-act", "storefront", check=False)
        assert refused.returncode == 2, refused.stderr
        [line] = refused.stderr.splitlines()
        assert line.startswith(
            f"backstage: error: {stage.source / 'base.txt'}: line 1: "
            "git+file:///nonexistent/repo.git#egg=nothing: cannot be built into a wheel on this "
            "workstation: fatal: '/nonexistent/repo.git' does not appear to be a git "
            "repository"), line
        after = stage.fleet.run("h1", f"ls -R {ROOT}/wheelhouse {ROOT}/venues {ROOT}/state; "
                                      f"cat {ROOT}/state/history.jsonl").stdout
        assert after == before
        assert stage.page("/")[0] == 200
    finally:
        stage.fleet.stop()
