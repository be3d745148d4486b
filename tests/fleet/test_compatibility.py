"""The old release against the new schema, on a real host: after the migrations, the live
release is health-checked once more before anything switches; a migration it cannot read
stops the rollout there, and the report says the migration is not backwards compatible."""

import json

import pytest

from tests.support.deploying import make_stage, settled

pytestmark = pytest.mark.fleet
ROOT = "/srv/backstage/compat"
# The column ``text`` becomes ``message``; the new code's field keeps its name, so only the
# old release (which selects ``text``) breaks.
RENAME = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.AlterField("greeting", "text",
                                        models.CharField(max_length=200, db_column="message"))]
"""
ADDITIVE = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.AddField("greeting", "mood", models.CharField(max_length=10,
                                                                          null=True))]
"""


@pytest.fixture(scope="module")
def compat(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("compat"), "compat", {"h1": 'roles = ["web"]'})
    try:
        # The health check reads a greeting (every column), as the home page does.
        health_path(stage, "/healthz", "/")
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        stage.post("/api/greet", "name=Ada")
        yield stage
    finally:
        stage.fleet.stop()


def deploy(stage, code: int, *options: str) -> dict:
    done = stage.cli("deploy-act", "storefront", "--json", *options, check=False)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def test_an_additive_migration_passes_the_live_release_check(compat):
    stage = compat
    migrations = stage.source / "greetings" / "migrations"
    (migrations / "0002_mood.py").write_text(ADDITIVE)
    report = deploy(stage, 0)
    assert report["hosts"]["h1"]["result"] == "deployed"
    assert settled(stage, "compat") == report["release"]


def health_path(stage, old: str, new: str) -> None:
    text = stage.inventory.read_text()
    stage.inventory.write_text(text.replace(f'health = {{ path = "{old}" }}',
                                            f'health = {{ path = "{new}" }}'))


def test_a_health_check_only_the_new_code_passes_is_not_blamed_on_the_migrations(compat):
    """The live release is checked after the migrations only if it passed the same check
    before them: a deploy that adds a view and makes it the health check is not stopped."""
    stage = compat
    urls = stage.source / "storefront" / "urls.py"
    urls.write_text(urls.read_text().replace(
        'path("healthz", views.healthz, name="healthz"),',
        'path("healthz", views.healthz, name="healthz"),\n    path("ready", views.home),'))
    health_path(stage, "/", "/ready")
    report = deploy(stage, 0)
    assert report["hosts"]["h1"]["result"] == "deployed"
    health_path(stage, "/ready", "/")


def test_a_column_rename_the_live_release_reads_stops_the_rollout_before_the_switch(compat):
    stage = compat
    live = settled(stage, "compat")
    migrations = stage.source / "greetings" / "migrations"
    (migrations / "0003_rename.py").write_text(RENAME.replace("0001_initial", "0002_mood"))
    models = stage.source / "greetings" / "models.py"
    models.write_text(models.read_text().replace(
        "text = models.CharField(max_length=200)",
        'text = models.CharField(max_length=200, db_column="message")'))

    report = deploy(stage, 1, "--allow-destructive")  # a rename: refused by default
    assert "not backwards compatible" in report["stopped"]
    assert "before any switch" in report["stopped"]
    outcome = report["hosts"]["h1"]
    assert outcome["result"] == "failed" and outcome["release_after"] == live
    assert "switch" not in outcome["durations"]
    assert f"storefront@{live}, the live release, fails its health check" in outcome["error"]
    # Traffic never moved: the live release is still the one linked (now failing: the README
    # says how to migrate in steps, and restore puts the database back).
    assert settled(stage, "compat") == live
    history = stage.cli("history", "--json").stdout
    assert not any(json.loads(line).get("event") == "deploy"
                   and json.loads(line).get("release") == report["release"]
                   for line in history.splitlines())
