"""Snapshots before migrate, against the real storefront example and real Django and sqlite
(fleet tests with PostgreSQL: tests/fleet/test_snapshots.py): managesteps' snapshot step and
its restore when the migrate fails, dbsnapshot's dump and restore, and the pure parts."""

import json
import shutil
import sqlite3
import subprocess
import sys

from backstage.commands import snapshots as snapshots_cmd
from backstage.model import Layout
from backstage.operations import snapshots
from backstage.remote import standalone
from tests.test_example_act import EXAMPLE, act_env

ADD_COLOUR = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("people", "0001_initial")]
    operations = [migrations.AddField("person", "colour", models.CharField(max_length=10,
                                                                          null=True))]
"""
# Creates a table, then fails: Django rolls this migration back (atomic), not the one before.
FAILING = """
from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails halfway")


class Migration(migrations.Migration):
    dependencies = [("people", "0002_colour")]
    operations = [migrations.CreateModel("Badge", [("id", models.AutoField(primary_key=True))]),
                  migrations.RunPython(fail, migrations.RunPython.noop)]
"""


def storefront(tmp_path):
    source = tmp_path / "storefront"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    env = act_env(tmp_path)  # the overlay over the example's settings, as deployed
    return source, env | {"PYTHONPATH": env["PYTHONPATH"].replace(str(EXAMPLE), str(source))}


def steps(source, env, steps_, snapshot=None):
    """Run managesteps as a deploy does; with ``snapshot`` (a path), the shell opens it on
    descriptor 3 for the snapshot step."""
    redirect = ' 3>"$SNAPSHOT"' if snapshot else ""
    return subprocess.run(["bash", "-c", f'"$@"{redirect}', "managesteps", sys.executable,
                           "-c", standalone("managesteps"), str(source / "manage.py"),
                           json.dumps(steps_)], cwd=source, env=env | {"SNAPSHOT": str(snapshot)},
                          capture_output=True, text=True, timeout=120, check=False)


def migrate_users(snapshot: bool) -> list:
    migrate = [["migrate users", "migrate", {"interactive": False, "database": "users"}]]
    files = {"users": "20261129T184836-users@r2.sqlite3"} if snapshot else {}
    return snapshots_cmd.with_snapshots(
        [["check", "check", {"deploy": True, "fail_level": "ERROR"}], *migrate], files)


def dump(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


def test_a_failing_migrate_leaves_the_sqlite_database_as_its_snapshot(tmp_path):
    source, env = storefront(tmp_path)
    database = tmp_path / "data" / "users.sqlite3"
    assert steps(source, env, migrate_users(False)).returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO people_person (name, created) VALUES ('Ada', '2026-01-01')")
    before = dump(database)
    migrations = source / "people" / "migrations"
    (migrations / "0002_colour.py").write_text(ADD_COLOUR)
    (migrations / "0003_fails.py").write_text(FAILING)

    done = steps(source, env, migrate_users(True), tmp_path / "snapshot")
    assert done.returncode == 1
    assert "this migration fails halfway" in done.stderr
    assert "restored database 'users'" in done.stderr
    assert dump(database) == before  # 0002 was applied, then undone with the rest
    assert dump(tmp_path / "snapshot") == before
    assert not [p for p in database.parent.iterdir() if p.name.startswith(".snapshot-")]


def test_nothing_to_migrate_writes_no_snapshot(tmp_path):
    source, env = storefront(tmp_path)
    assert steps(source, env, migrate_users(False)).returncode == 0
    done = steps(source, env, migrate_users(True), tmp_path / "snapshot")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "snapshot").stat().st_size == 0
    assert "::step migrate users: skipped (unchanged)" in done.stderr
    assert "::step snapshot" not in done.stderr


def dbsnapshot(source, env, *words, stdin=None):
    return subprocess.run([sys.executable, "-c", standalone("dbsnapshot"),
                           str(source / "manage.py"), *words], cwd=source, env=env,
                          input=stdin, capture_output=True, timeout=120, check=False)


def test_dbsnapshot_dumps_and_restores_a_sqlite_database(tmp_path):
    source, env = storefront(tmp_path)
    database = tmp_path / "data" / "users.sqlite3"
    assert steps(source, env, migrate_users(False)).returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO people_person (name, created) VALUES ('Ada', '2026-01-01')")
    before = dump(database)
    assert dbsnapshot(source, env, "dump", "users", "--if-pending").stdout == b""
    taken = dbsnapshot(source, env, "dump", "users")
    assert taken.returncode == 0, taken.stderr
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM people_person")
    restored = dbsnapshot(source, env, "restore", "users", stdin=taken.stdout)
    assert restored.returncode == 0, restored.stderr
    assert dump(database) == before


def test_snapshot_names_listing_and_merge():
    stamp = snapshots_cmd.stamp("2026-11-29T18:48:36.123Z")
    assert stamp == "20261129T184836"
    name = snapshots_cmd.file_name(stamp, "users", "20261129T184800-abcdef12", "sqlite")
    assert name == "20261129T184836-users@20261129T184800-abcdef12.sqlite3"
    h1 = snapshots.parse_listing("h1", f"{name} 4096\nnot-a-snapshot 12\n")
    h2 = snapshots.parse_listing("h2", f"{name} 8192\n")
    [merged] = snapshots.merge({"h1": h1, "h2": h2})
    assert merged.as_dict() == {"id": "20261129T184836-users", "database": "users",
                                "release": "20261129T184800-abcdef12",
                                "time": "2026-11-29T18:48:36Z", "size": 8192,
                                "kind": "sqlite3", "hosts": ["h1", "h2"]}
    assert snapshots.file_of(merged) == name


def test_each_database_keeps_its_newest_snapshots_and_an_empty_one_is_dropped(tmp_path):
    """keep_finished's shell text, run in a user layout under tmp_path: the partial snapshot
    becomes a snapshot if it holds anything (an empty one goes), then only the newest ``keep``
    of each database stay, counted per database."""
    layout = Layout("p", "user", str(tmp_path), 8080)
    folder = tmp_path / "p" / "backups" / "web"
    folder.mkdir(parents=True)
    names = [snapshots_cmd.file_name(f"2026010{day}T000000", database, "r", "sqlite")
             for day in range(1, 5) for database in ("users", "other")]
    for name in names:
        (folder / name).write_text("x")
    newest = snapshots_cmd.file_name("20260109T000000", "users", "r", "sqlite")
    (folder / (newest + snapshots_cmd.PARTIAL)).write_text("snapshot")
    empty = snapshots_cmd.file_name("20260109T000000", "other", "r", "sqlite")
    (folder / (empty + snapshots_cmd.PARTIAL)).write_text("")
    script = snapshots_cmd.keep_finished(layout, "web", [newest, empty], keep=2)
    subprocess.run(["bash", "-c", script], check=True)
    left = sorted(p.name for p in folder.iterdir())
    other = [n for n in names if "-other@" in n]
    assert left == sorted([newest, names[6], *other[-2:]])
