"""The management steps of a prepare in one Python process (backstage/remote/managesteps.py),
run against the real storefront example and real Django, as a deploy runs them on a host.

A ``migrate`` with nothing to apply is skipped, and the database's own record decides it, so a
migration unapplied by hand (``migrate <app> 0001``) is applied again by the next deploy.
"""

import json
import shutil
import sqlite3
import subprocess
import sys

from backstage.remote import standalone
from tests.test_example_act import EXAMPLE, act_env

MOOD = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.AddField("greeting", "mood", models.CharField(max_length=10,
                                                                          default=""))]
"""
STEPS = [["check", "check", {"deploy": True, "fail_level": "ERROR"}],
         ["collectstatic", "collectstatic", {"interactive": False, "clear": True, "verbosity": 0}],
         ["migrate users", "migrate", {"interactive": False, "database": "users"}],
         ["migrate greetings", "migrate", {"interactive": False, "database": "greetings"}]]


def prepare(source, env) -> list[str]:
    """Run the steps as a deploy does; the step markers it printed."""
    done = subprocess.run([sys.executable, "-c", standalone("managesteps"),
                           str(source / "manage.py"), json.dumps(STEPS)],
                          cwd=source, env=env | {"PYTHONPATH": env["PYTHONPATH"].replace(
                                                    str(EXAMPLE), str(source))},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [line.removeprefix("::step ") for line in done.stderr.splitlines()
            if line.startswith("::step ")]


def applied(env, tmp_path) -> list[str]:
    with sqlite3.connect(tmp_path / "data" / "greetings.sqlite3") as db:
        return [name for (name,) in db.execute(
            "SELECT name FROM django_migrations WHERE app = 'greetings' ORDER BY id")]


def test_steps_run_in_order_and_an_unchanged_database_is_not_migrated(tmp_path):
    source = tmp_path / "storefront"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    env = act_env(tmp_path)
    assert prepare(source, env) == ["check", "collectstatic", "migrate users",
                                    "migrate greetings"]
    assert (tmp_path / "static" / "greetings" / "style.css").exists()
    assert prepare(source, env) == ["check", "collectstatic",
                                    "migrate users: skipped (unchanged)",
                                    "migrate greetings: skipped (unchanged)"]


def test_a_migration_unapplied_by_hand_is_applied_by_the_next_deploy(tmp_path):
    source = tmp_path / "storefront"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    env = act_env(tmp_path)
    prepare(source, env)
    (source / "greetings" / "migrations" / "0002_mood.py").write_text(MOOD)
    assert prepare(source, env)[-1] == "migrate greetings"  # new migration file: migrated
    assert applied(env, tmp_path) == ["0001_initial", "0002_mood"]

    by_hand = subprocess.run([sys.executable, "manage.py", "migrate", "greetings", "0001",
                              "--database", "greetings"], cwd=source, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert by_hand.returncode == 0, by_hand.stderr
    assert applied(env, tmp_path) == ["0001_initial"]

    assert prepare(source, env)[-1] == "migrate greetings"  # the code did not change; the db did
    assert applied(env, tmp_path) == ["0001_initial", "0002_mood"]
