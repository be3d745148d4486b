"""Migrations you can trust, on a fleet host with the real example act, Django and sqlite:
``plan`` shows what a release would migrate, classified; a destructive migration stops the
deploy before anything is migrated or switched unless allowed; ``rollback`` refuses a
release that predates applied migrations, ``--migrate-back`` unapplies them (refused when one
cannot be reversed) and ``--force`` goes back anyway, loudly.

One fleet for the module; the tests run in order, each release built by writing a migration
into the act's source (tests/test_migration_plans.py has the same with Django alone)."""

import json
from dataclasses import dataclass

import pytest

from tests.support.deploying import Stage, make_stage, settled
from tests.support.postgres import GREETINGS_ON_POSTGRES, Postgres, start_postgres
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


@dataclass
class Bed:
    """The module's stage, and the greetings database it migrates (sqlite on the one host,
    or a PostgreSQL database shared by two hosts)."""

    stage: Stage
    postgres: Postgres | None = None

    def database(self) -> dict:
        if self.postgres is None:
            return json.loads(self.stage.fleet.run("h1", ["python3", "-c", READ, DATA]).stdout)
        query = {"columns": "SELECT column_name FROM information_schema.columns WHERE "
                            "table_name = 'greetings_greeting' ORDER BY ordinal_position",
                 "texts": "SELECT text FROM greetings_greeting ORDER BY id",
                 "applied": "SELECT name FROM django_migrations WHERE app = 'greetings' "
                            "ORDER BY id"}
        return {key: self.postgres.psql("greetings", sql).splitlines()
                for key, sql in query.items()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bed(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"schema-{request.param}")
    postgres = start_postgres(["greetings"]) if request.param == "postgresql" else None
    try:
        stage = make_stage(work, PRODUCTION, {"h1": 'roles = ["web"]'}) if postgres is None \
            else make_stage(work, PRODUCTION, {h: 'roles = ["web"]' for h in ("h1", "h2")},
                            databases=GREETINGS_ON_POSTGRES,
                            secrets={"GREETINGS_PASSWORD": postgres.password},
                            requirements=("psycopg[binary]>=3.1",), shared=postgres.shared)
        try:
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            for name in ("Ann", "Bob"):
                stage.post("/api/greet", f"name={name}")
            yield Bed(stage, postgres)
        finally:
            stage.fleet.stop()
    finally:
        if postgres:
            postgres.stop()


@pytest.fixture
def stage(bed):
    return bed.stage


@pytest.fixture
def database(bed):
    return bed.database


def serving(stage) -> str:
    status, _ = stage.page("/")
    assert status == 200
    return settled(stage, PRODUCTION)


def test_a_nullable_field_is_planned_additive_and_migrated(stage, database):
    add_migration(stage.source, "0002_mood", "0001_initial", ADD_MOOD)
    plan = stage.cli("plan", "storefront").stdout
    assert "greetings: 1 migration(s), additive" in plan
    assert "additive: Add field mood to greeting" in plan
    done = stage.cli("deploy-act", "storefront", "--json")
    report = json.loads(done.stdout)
    kinds = {p["database"]: p["kind"] for plans in report["migration_plans"].values()
             for p in plans if p["kind"]}
    assert kinds["greetings"] == "additive"
    assert "mood" in database()["columns"]


def test_a_removed_field_stops_the_deploy_before_it_migrates_or_switches(stage, database):
    live, before = serving(stage), database()
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
    assert database() == before  # schema unchanged
    assert serving(stage) == live  # the old release serves


def test_allowed_it_migrates_and_rollback_is_then_refused_naming_the_migration(stage, database):
    live = serving(stage)
    stage.cli("deploy-act", "storefront", "--allow-destructive")
    assert "mood" not in database()["columns"]
    assert serving(stage) != live
    refused = stage.cli("rollback", "storefront", check=False)
    assert refused.returncode != 0
    assert f"storefront@{live} predates migrations applied to its databases: " \
           "greetings.0003_no_mood" in refused.stderr
    assert serving(stage) != live  # nothing rolled back


def test_migrate_back_reverses_a_reversible_migration_keeping_the_other_columns(stage, database):
    newest, before = serving(stage), database()
    done = stage.cli("rollback", "storefront", "--migrate-back")
    assert "migrated back: greetings.0003_no_mood unapplied" in done.stdout
    after = database()
    assert "mood" in after["columns"]
    assert after["texts"] == before["texts"] == ["Hello, Ann!", "Hello, Bob!"]  # rows intact
    assert after["applied"][-1] == "0002_mood"
    assert serving(stage) != newest


def test_migrate_back_is_refused_for_an_irreversible_migration_and_force_goes_back(stage, database):
    add_migration(stage.source, "0004_data", "0003_no_mood", NO_WAY_BACK)
    stage.cli("deploy-act", "storefront", "--allow-destructive")
    newest, before = serving(stage), database()
    assert before["applied"][-1] == "0004_data"
    refused = stage.cli("rollback", "storefront", "--migrate-back", check=False)
    assert refused.returncode != 0
    assert "greetings.0004_data" in refused.stderr and "restore" in refused.stderr
    assert database() == before and serving(stage) == newest
    forced = stage.cli("rollback", "storefront", "--force")
    assert "FORCED: storefront@" in forced.stdout and "greetings.0004_data" in forced.stdout
    assert serving(stage) != newest


def test_a_rollout_stopped_after_migrating_says_the_old_code_is_on_a_newer_schema(stage, database):
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
    assert {o["result"] for o in report["hosts"].values()} == {"failed"}  # it did not start
    assert report["schema"].endswith(": the previous release serves on a schema it predates: "
                                     "greetings.0005_tone stay applied and it does not know "
                                     "them")
    assert "tone" in database()["columns"] and serving(stage) == live
