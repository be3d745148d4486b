"""Migrations you can trust, on a fleet host with the real example act, Django and sqlite:
``plan`` shows what a release would migrate, classified; a destructive migration stops the
deploy before anything is migrated or switched unless allowed; ``rollback`` refuses a
release that predates applied migrations, ``--migrate-back`` unapplies them (refused when one
cannot be reversed) and ``--force`` goes back anyway, loudly.

One fleet for the module; the tests run in order, each release built by writing a migration
into the act's source (tests/test_migration_plans.py has the same with Django alone)."""

import json

import pytest

from tests.support.deploying import make_stage, settled
from tests.test_migration_plans import ADD_MOOD, NO_WAY_BACK, REMOVE_MOOD, add_migration

PRODUCTION = "schema"
DATA = f"/srv/backstage/{PRODUCTION}/data/greetings.sqlite3"
READ = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(json.dumps({
    "columns": [r[1] for r in db.execute("PRAGMA table_info(greetings_greeting)")],
    "texts": [r[0] for r in db.execute("SELECT text FROM greetings_greeting ORDER BY id")],
    "applied": [r[0] for r in db.execute(
        "SELECT name FROM django_migrations WHERE app = 'greetings' ORDER BY id")]}))
"""

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("schema"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        for name in ("Ann", "Bob"):
            stage.post("/api/greet", f"name={name}")
        yield stage
    finally:
        stage.fleet.stop()


def database(stage) -> dict:
    return json.loads(stage.fleet.run("h1", ["python3", "-c", READ, DATA]).stdout)


def serving(stage) -> str:
    status, _ = stage.page("/")
    assert status == 200
    return settled(stage, PRODUCTION)


def test_a_nullable_field_is_planned_additive_and_migrated(stage):
    add_migration(stage.source, "0002_mood", "0001_initial", ADD_MOOD)
    plan = stage.cli("plan", "storefront").stdout
    assert "greetings: 1 migration(s), additive" in plan
    assert "additive: Add field mood to greeting" in plan
    done = stage.cli("deploy-act", "storefront", "--json")
    report = json.loads(done.stdout)
    kinds = {p["database"]: p["kind"] for p in report["migration_plans"]["h1"]}
    assert kinds["greetings"] == "additive"
    assert "mood" in database(stage)["columns"]


def test_a_removed_field_stops_the_deploy_before_it_migrates_or_switches(stage):
    live, before = serving(stage), database(stage)
    add_migration(stage.source, "0003_no_mood", "0002_mood", REMOVE_MOOD)
    plan = stage.cli("plan", "storefront").stdout
    assert "greetings: 1 migration(s), destructive" in plan
    assert "destructive: Remove field mood from greeting (removes a column)" in plan
    dry = json.loads(stage.cli("deploy-act", "storefront", "--dry-run", "--json").stdout)
    (greetings,) = [p for p in dry["migrations"]["h1"] if p["database"] == "greetings"]
    assert greetings["kind"] == "destructive"
    assert [op["operation"] for m in greetings["migrations"] for op in m["operations"]] \
        == ["RemoveField"]
    refused = stage.cli("deploy-act", "storefront", check=False)
    assert refused.returncode == 1
    assert ("greetings: greetings.0003_no_mood: Remove field mood from greeting is destructive "
            "(removes a column): nothing migrated; deploy with --allow-destructive") \
        in refused.stderr
    assert database(stage) == before  # schema unchanged
    assert serving(stage) == live  # the old release serves


def test_allowed_it_migrates_and_rollback_is_then_refused_naming_the_migration(stage):
    live = serving(stage)
    stage.cli("deploy-act", "storefront", "--allow-destructive")
    assert "mood" not in database(stage)["columns"]
    assert serving(stage) != live
    refused = stage.cli("rollback", "storefront", check=False)
    assert refused.returncode != 0
    assert f"storefront@{live} predates migrations applied to its databases: " \
           "greetings.0003_no_mood" in refused.stderr
    assert serving(stage) != live  # nothing rolled back


def test_migrate_back_reverses_a_reversible_migration_keeping_the_other_columns(stage):
    newest, before = serving(stage), database(stage)
    done = stage.cli("rollback", "storefront", "--migrate-back")
    assert "migrated back: greetings.0003_no_mood unapplied" in done.stdout
    after = database(stage)
    assert "mood" in after["columns"]
    assert after["texts"] == before["texts"] == ["Hello, Ann!", "Hello, Bob!"]  # rows intact
    assert after["applied"][-1] == "0002_mood"
    assert serving(stage) != newest


def test_migrate_back_is_refused_for_an_irreversible_migration_and_force_goes_back(stage):
    add_migration(stage.source, "0004_data", "0003_no_mood", NO_WAY_BACK)
    stage.cli("deploy-act", "storefront", "--allow-destructive")
    newest, before = serving(stage), database(stage)
    assert before["applied"][-1] == "0004_data"
    refused = stage.cli("rollback", "storefront", "--migrate-back", check=False)
    assert refused.returncode != 0
    assert "greetings.0004_data" in refused.stderr and "restore" in refused.stderr
    assert database(stage) == before and serving(stage) == newest
    forced = stage.cli("rollback", "storefront", "--force")
    assert "FORCED: storefront@" in forced.stdout and "greetings.0004_data" in forced.stdout
    assert serving(stage) != newest


def test_a_rollout_stopped_after_migrating_says_the_old_code_is_on_a_newer_schema(stage):
    live = serving(stage)
    add_migration(stage.source, "0005_tone", "0004_data", ADD_MOOD.replace("mood", "tone"))
    views = stage.source / "greetings" / "views.py"
    text = views.read_text()
    views.write_text(text.replace("    for model in (Person, Greeting):",
                                  "    return HttpResponse('broken', status=500)\n"
                                  "    for model in (Person, Greeting):"))
    try:
        done = stage.cli("deploy-act", "storefront", "--json", check=False)
    finally:
        views.write_text(text)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["hosts"]["h1"]["result"] == "failed"  # its new release failed to start
    assert report["schema"] == ("h1: the previous release serves on a schema it predates: "
                                "greetings.0005_tone stay applied and it does not know them")
    assert "tone" in database(stage)["columns"] and serving(stage) == live
