"""The management steps of a prepare in one process, on a fleet host (unit tests against real
Django: tests/test_managesteps.py)."""

import pytest

from tests.support.deploying import deployed


@pytest.mark.fleet
def test_a_deploy_says_which_migrations_it_skipped(tmp_path):
    """On a fleet host: the second deploy (a template change) migrates nothing, and says so
    in its step list."""
    with deployed(tmp_path, "skips") as stage:
        path = stage.source / "greetings" / "templates" / "greetings" / "home.html"
        path.write_text(path.read_text().replace("<h1>", "<h1>Again "))
        done = stage.cli("deploy-act", "storefront")
        assert "h1  migrate users: skipped (unchanged)" in done.stderr
        assert "h1  migrate greetings: skipped (unchanged)" in done.stderr
        status, body = stage.page("/")
        assert status == 200 and "<h1>Again " in body
