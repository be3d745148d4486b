"""Snapshots before migrate on two real hosts sharing a real PostgreSQL server (``greetings``)
and each with its own sqlite file (``users``): a deploy with migrations snapshots them, the
``snapshots`` task lists them, ``restore`` puts deleted rows back with the act stopped
meanwhile, and a migration failing halfway leaves sqlite exactly as before and PostgreSQL as
Django's transactions guarantee. One fleet for the module; the tests run in order."""

import json
import re

import pytest

from tests.support.deploying import Load, make_stage
from tests.support.postgres import ADD_MOOD, GREETINGS_ON_POSTGRES, start_postgres
from tests.test_snapshots import ADD_COLOUR, FAILING

pytestmark = pytest.mark.fleet
HOSTS = ["h1", "h2"]
ROOT = "/srv/backstage/snaps"
BADGE = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", "0002_mood")]
    operations = [migrations.CreateModel("Badge", [("id", models.AutoField(primary_key=True))])]
"""
# A table created, then a failure: the whole migration is rolled back (atomic on PostgreSQL).
RIBBON_FAILS = """
from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails halfway")


class Migration(migrations.Migration):
    dependencies = [("greetings", "0003_badge")]
    operations = [migrations.CreateModel("Ribbon", [("id", models.AutoField(primary_key=True))]),
                  migrations.RunPython(fail, migrations.RunPython.noop)]
"""
DUMP = "import sqlite3, sys; print('\\n'.join(sqlite3.connect(sys.argv[1]).iterdump()))"
COUNT = ("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
         "'SELECT count(*) FROM people_person').fetchone()[0])")
DELETE = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
          "db.execute('DELETE FROM people_person'); db.commit()")


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    postgres = start_postgres(["greetings"])
    try:
        stage = make_stage(tmp_path_factory.mktemp("snapshots"), "snaps",
                           {h: 'roles = ["web"]' for h in HOSTS}, databases=GREETINGS_ON_POSTGRES,
                           secrets={"GREETINGS_PASSWORD": postgres.password},
                           requirements=("psycopg[binary]>=3.1",), shared=postgres.shared)
        try:
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            yield stage, postgres
        finally:
            stage.fleet.stop()
    finally:
        postgres.stop()


def deploy(stage, code: int = 0) -> dict:
    done = stage.cli("deploy-act", "storefront", "--json", check=False)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def listed(stage) -> list[dict]:
    return json.loads(stage.cli("snapshots", "storefront", "--json").stdout)["snapshots"]


def migration(stage, app: str, name: str, text: str | None) -> None:
    path = stage.source / app / "migrations" / f"{name}.py"
    if text is None:
        path.unlink()
    else:
        path.write_text(text)


def people(stage, host: str) -> int:
    return int(stage.fleet.run(host, ["python3", "-c", COUNT,
                                      f"{ROOT}/data/users.sqlite3"]).stdout)


def sqlite_dump(stage, host: str) -> str:
    return stage.fleet.run(host, ["python3", "-c", DUMP, f"{ROOT}/data/users.sqlite3"]).stdout


def test_a_deploy_with_migrations_snapshots_what_it_migrates_and_snapshots_lists_it(snaps):
    stage, _ = snaps
    for host in HOSTS:
        stage.post("/api/greet", f"name=Before-{host}", host=host)
    migration(stage, "greetings", "0002_mood", ADD_MOOD)
    migration(stage, "people", "0002_colour", ADD_COLOUR)
    release = deploy(stage)["release"]

    found = {s["database"]: s for s in listed(stage)}
    assert set(found) == {"users", "greetings"}
    assert found["greetings"]["kind"] == "pgdump" and found["greetings"]["hosts"] == ["h1"]
    assert found["users"]["kind"] == "sqlite3" and found["users"]["hosts"] == HOSTS
    assert all(s["release"] == release and s["size"] > 0 for s in found.values()), (found, release)
    # Root's alone: the act cannot change (or remove) what a restore reads.
    modes = stage.fleet.run("h1", f"stat -c '%U %a %n' {ROOT}/backups/storefront "
                                  f"{ROOT}/backups/storefront/*").stdout.split("\n")
    assert modes[0].startswith("root 700 ")
    assert all(line.startswith("root 600 ") for line in modes[1:] if line)

    home = stage.source / "greetings" / "templates" / "greetings" / "home.html"
    home.write_text(re.sub(r"<h1>", "<h1>Unmigrated ", home.read_text(), count=1))
    deploy(stage)  # nothing to migrate: no snapshot
    assert len(listed(stage)) == 2


def restore(stage, snapshot_id: str) -> tuple[str, dict]:
    """Run restore under load on each host's gig; its output and the load's counts."""
    loads = [Load(stage, host=h, connections=2, path="/healthz") for h in HOSTS]
    done = stage.cli("restore", "storefront", "--snapshot", snapshot_id, check=False)
    counts = [load.finish() for load in loads]
    assert done.returncode == 0, done.stderr
    return done.stdout, counts


def test_restore_brings_back_postgres_rows_deleted_after_the_snapshot(snaps):
    stage, postgres = snaps
    before = postgres.psql("greetings", "SELECT count(*) FROM greetings_greeting")
    assert int(before) >= 2
    postgres.psql("greetings", "DELETE FROM greetings_greeting")
    [snapshot] = [s for s in listed(stage) if s["database"] == "greetings"]

    output, counts = restore(stage, snapshot["id"])
    assert postgres.psql("greetings", "SELECT count(*) FROM greetings_greeting") == before
    assert "h1: stopped storefront@" in output and f"restored greetings from {snapshot['id']}" \
        in output and "started storefront@" in output
    assert "h2: stopped storefront@" in output
    # Nothing served while the database was put back; everything serves after.
    for count in counts:
        assert count["non_2xx"] + count["socket_errors"] > 0, count
    assert all(stage.page("/healthz", host=h)[0] == 200 for h in HOSTS)
    # The snapshot predates 0002_mood: its record is gone with it, as the schema is.
    assert "0002_mood" not in postgres.psql("greetings", "SELECT name FROM django_migrations")


def test_restore_brings_back_sqlite_rows_on_every_host(snaps):
    stage, _ = snaps
    before = {h: people(stage, h) for h in HOSTS}
    assert all(before.values())
    for host in HOSTS:
        stage.fleet.run(host, ["python3", "-c", DELETE, f"{ROOT}/data/users.sqlite3"])
    [snapshot] = [s for s in listed(stage) if s["database"] == "users"]
    output, counts = restore(stage, snapshot["id"])
    assert {h: people(stage, h) for h in HOSTS} == before
    assert "h2: stopped" in output and "restored users" in output
    for count in counts:
        assert count["non_2xx"] + count["socket_errors"] > 0, count
    assert all(stage.page("/healthz", host=h)[0] == 200 for h in HOSTS)


def test_a_sqlite_migration_failing_halfway_leaves_the_database_as_it_was(snaps):
    stage, _ = snaps
    before = {h: sqlite_dump(stage, h) for h in HOSTS}
    migration(stage, "people", "0003_fails", FAILING)  # after 0002_colour, which applies
    report = deploy(stage, code=1)
    assert {o["result"] for o in report["hosts"].values()} == {"failed"}
    assert "this migration fails halfway" in report["hosts"]["h1"]["error"]
    assert {h: sqlite_dump(stage, h) for h in HOSTS} == before
    migration(stage, "people", "0003_fails", None)


def test_a_postgres_migration_failing_halfway_is_rolled_back_alone(snaps):
    """Django runs each migration in its own transaction on PostgreSQL: the failing one leaves
    nothing (its table is not there), the ones before it in the same deploy stay applied."""
    stage, postgres = snaps
    migration(stage, "greetings", "0003_badge", BADGE)
    migration(stage, "greetings", "0004_fails", RIBBON_FAILS)
    report = deploy(stage, code=1)
    assert report["stopped"] == "migrations failed on h1"
    applied = postgres.psql("greetings", "SELECT name FROM django_migrations "
                                         "WHERE app = 'greetings' ORDER BY id").split()
    assert applied[-2:] == ["0002_mood", "0003_badge"]
    tables = postgres.psql("greetings", "SELECT tablename FROM pg_tables "
                                        "WHERE tablename LIKE 'greetings_%'").split()
    assert "greetings_badge" in tables and "greetings_ribbon" not in tables
    # A snapshot from before 0002 and 0003 was taken: restore can go all the way back.
    assert len([s for s in listed(stage) if s["database"] == "greetings"]) == 2
    assert all(stage.page("/healthz", host=h)[0] == 200 for h in HOSTS)


def test_restore_of_an_unknown_snapshot_is_one_line_and_stops_nothing(snaps):
    stage, _ = snaps
    done = stage.cli("restore", "storefront", "--snapshot", "20990101T000000-users",
                     check=False)
    assert done.returncode != 0
    assert "--snapshot: no snapshot '20990101T000000-users' of act 'storefront'" in done.stderr
    assert "Traceback" not in done.stderr
    history = stage.cli("history", "--limit", "5", "--json").stdout
    assert not any(json.loads(line)["event"] == "stop" for line in history.splitlines())
    assert all(stage.page("/healthz", host=h)[0] == 200 for h in HOSTS)
