"""Migrations in the plan and the destructive-migrations policy: the classification of each
operation (backstage/remote/migrations.py, pure) and managesteps' plan, refusal and
migrate-back against the real storefront example and real Django, as a deploy runs them."""

import json
import shutil
import sqlite3
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from backstage.facts.migrations import plan_lines, said_plans
from backstage.remote import standalone
from backstage.remote.migrations import (
    ADDITIVE,
    DESTRUCTIVE,
    IRREVERSIBLE,
    KINDS,
    SAFE,
    classify,
    worst,
)
from tests.test_example_act import EXAMPLE, act_env

# --- the classification ---------------------------------------------------------------------

FIELDS = st.fixed_dictionaries({
    "null": st.booleans(), "default": st.booleans(), "many_to_many": st.booleans(),
    "type": st.sampled_from(["CharField", "TextField", "IntegerField"]),
    "column": st.sampled_from([None, "c1", "c2"]),
    "max_length": st.one_of(st.none(), st.integers(1, 500)),
    "max_digits": st.one_of(st.none(), st.integers(1, 30)),
    "decimal_places": st.one_of(st.none(), st.integers(0, 10))})
NAMES = st.sampled_from(sorted(SAFE) + ["AddField", "AlterField", "RemoveField", "DeleteModel",
                                        "RenameField", "RenameModel", "RunPython", "RunSQL",
                                        "SeparateDatabaseAndState", "SomethingCustom"])
OPERATIONS = st.recursive(
    st.fixed_dictionaries({"operation": NAMES, "reversible": st.booleans(), "field": FIELDS,
                           "old_field": FIELDS}),
    lambda parts: st.fixed_dictionaries({"operation": st.just("SeparateDatabaseAndState"),
                                         "reversible": st.just(True),
                                         "database_operations": st.lists(parts, max_size=3)}),
    max_leaves=5)


@given(OPERATIONS)
def test_every_operation_gets_one_of_the_three_kinds_and_a_reason(operation):
    kind, why = classify(operation)
    assert kind in KINDS and why
    if operation["reversible"] is False:
        assert kind == IRREVERSIBLE


@given(st.lists(OPERATIONS, max_size=4))
def test_separate_database_and_state_is_the_worst_of_its_database_operations(parts):
    kind, _ = classify({"operation": "SeparateDatabaseAndState", "reversible": True,
                        "database_operations": parts})
    assert kind == worst(classify(part)[0] for part in parts)


@given(FIELDS)
def test_an_unchanged_or_widened_field_is_additive(field):
    assert classify({"operation": "AlterField", "old_field": field, "field": field})[0] == ADDITIVE
    wider = {**field, "null": True,
             **{k: v + 1 for k, v in field.items() if k.startswith("max_") and v is not None}}
    assert classify({"operation": "AlterField", "old_field": field, "field": wider})[0] \
        == ADDITIVE


def test_the_kinds_the_issue_names():
    field = {"null": False, "default": False, "type": "CharField", "max_length": 20}
    cases = [
        ({"operation": "AddField", "field": {**field, "null": True}}, ADDITIVE),
        ({"operation": "AddField", "field": {**field, "default": True}}, ADDITIVE),
        ({"operation": "AddField", "field": field}, DESTRUCTIVE),
        ({"operation": "CreateModel"}, ADDITIVE),
        ({"operation": "AddIndex"}, ADDITIVE),
        ({"operation": "RemoveField"}, DESTRUCTIVE),
        ({"operation": "DeleteModel"}, DESTRUCTIVE),
        ({"operation": "RenameField"}, DESTRUCTIVE),
        ({"operation": "RenameModel"}, DESTRUCTIVE),
        ({"operation": "AlterField", "old_field": field, "field": {**field, "max_length": 10}},
         DESTRUCTIVE),
        ({"operation": "AlterField", "old_field": {**field, "null": True}, "field": field},
         DESTRUCTIVE),
        ({"operation": "AlterField", "old_field": {**field, "null": True},
          "field": {**field, "default": True}}, ADDITIVE),
        ({"operation": "AlterField", "old_field": field, "field": {**field, "type": "IntegerField"}},
         DESTRUCTIVE),
        ({"operation": "RunPython", "reversible": False}, IRREVERSIBLE),
        ({"operation": "RunSQL", "reversible": False}, IRREVERSIBLE),
        ({"operation": "RunPython", "reversible": True}, ADDITIVE),
        ({"operation": "SomethingCustom", "reversible": True}, DESTRUCTIVE),
    ]
    assert [classify(operation)[0] for operation, _ in cases] == [kind for _, kind in cases]


def test_plans_are_read_from_their_marked_lines_and_said_in_words():
    plan = {"database": "greetings", "kind": "destructive", "migrations": [
        {"migration": "greetings.0002_x", "backwards": False, "operations": [
            {"description": "Remove field mood from greeting", "operation": "RemoveField",
             "kind": "destructive", "why": "removes a column"}]}]}
    stderr = f"::step check\n::migrations {json.dumps(plan)}\n::migrations not json\nnoise\n"
    assert said_plans(stderr) == [plan]
    assert plan_lines([plan, {"database": "users", "migrations": [], "kind": None}]) == [
        "greetings: 1 migration(s), destructive", "  greetings.0002_x",
        "    destructive: Remove field mood from greeting (removes a column)",
        "users: no migrations to apply"]


# --- managesteps with real Django -----------------------------------------------------------

MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", {after!r})]
    operations = [{operations}]
"""
ADD_MOOD = 'migrations.AddField("greeting", "mood", models.CharField(max_length=10, null=True))'
REMOVE_MOOD = 'migrations.RemoveField("greeting", "mood")'
NO_WAY_BACK = "migrations.RunPython(migrations.RunPython.noop)"


def add_migration(source, name: str, after: str, operations: str) -> None:
    (source / "greetings" / "migrations" / f"{name}.py").write_text(
        MIGRATION.format(after=after, operations=operations))


def managesteps(source, env, steps) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", standalone("managesteps"),
                           str(source / "manage.py"), json.dumps(steps)],
                          cwd=source, env=env | {"PYTHONPATH": env["PYTHONPATH"].replace(
                                                    str(EXAMPLE), str(source))},
                          capture_output=True, text=True, timeout=120, check=False)


def migrate(source, env, policy: str) -> subprocess.CompletedProcess:
    return managesteps(source, env, [["migrate greetings", "migrate", {
        "interactive": False, "database": "greetings",
        "backstage": {"database": "greetings", "destructive": policy}}]])


def columns(tmp_path) -> list[str]:
    with sqlite3.connect(tmp_path / "data" / "greetings.sqlite3") as db:
        return [row[1] for row in db.execute("PRAGMA table_info(greetings_greeting)")]


def storefront(tmp_path, name="storefront"):
    source = tmp_path / name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    return source


def test_additive_migrations_run_and_destructive_ones_are_refused_unless_allowed(tmp_path):
    source, env = storefront(tmp_path), act_env(tmp_path)
    assert migrate(source, env, "refuse").returncode == 0
    add_migration(source, "0002_mood", "0001_initial", ADD_MOOD)
    done = migrate(source, env, "refuse")
    assert done.returncode == 0, done.stderr
    (plan,) = said_plans(done.stderr)
    assert plan["kind"] == ADDITIVE
    assert [m["migration"] for m in plan["migrations"]] == ["greetings.0002_mood"]
    assert "mood" in columns(tmp_path)

    add_migration(source, "0003_no_mood", "0002_mood", REMOVE_MOOD)
    refused = migrate(source, env, "refuse")
    assert refused.returncode == 3
    assert said_plans(refused.stderr)[0]["kind"] == DESTRUCTIVE
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("greetings: greetings.0003_no_mood: Remove field mood from greeting "
                           "is destructive (removes a column): nothing migrated")
    assert "mood" in columns(tmp_path)  # nothing migrated
    assert migrate(source, env, "allow").returncode == 0
    assert "mood" not in columns(tmp_path)


def test_a_database_new_to_an_app_takes_its_whole_history_whatever_it_removed(tmp_path):
    source, env = storefront(tmp_path), act_env(tmp_path)
    add_migration(source, "0002_mood", "0001_initial", ADD_MOOD)
    add_migration(source, "0003_no_mood", "0002_mood", REMOVE_MOOD)
    done = migrate(source, env, "refuse")
    assert done.returncode == 0, done.stderr
    plan = next(p for p in said_plans(done.stderr) if p["database"] == "greetings")
    assert plan["kind"] == ADDITIVE and all(m["fresh"] for m in plan["migrations"])
    assert "mood" not in columns(tmp_path)


def test_an_older_release_names_what_it_does_not_know_and_migrate_back_unapplies_it(tmp_path):
    old, env = storefront(tmp_path, "old"), act_env(tmp_path)
    new = storefront(tmp_path, "new")
    add_migration(new, "0002_mood", "0001_initial", ADD_MOOD)
    assert migrate(new, env, "refuse").returncode == 0
    asked = managesteps(old, env, [["unknown", "unknown-migrations",
                                    {"databases": {"greetings": "greetings"}}]])
    assert asked.returncode == 0, asked.stderr
    found = json.loads(asked.stdout)["greetings"]
    assert found == {"alias": "greetings", "unknown": ["greetings.0002_mood"],
                     "targets": {"greetings": "0001_initial"}}
    back = managesteps(new, env, [["migrate back", "migrate-back", {"databases": {
        "greetings": {"alias": "greetings", "targets": found["targets"]}}}]])
    assert back.returncode == 0, back.stderr
    assert "mood" not in columns(tmp_path)


def test_migrate_back_is_refused_before_anything_when_a_migration_has_no_reverse(tmp_path):
    new, env = storefront(tmp_path), act_env(tmp_path)
    add_migration(new, "0002_mood", "0001_initial", ADD_MOOD)
    add_migration(new, "0003_data", "0002_mood", NO_WAY_BACK)
    assert migrate(new, env, "allow").returncode == 0
    back = managesteps(new, env, [["migrate back", "migrate-back", {"databases": {
        "greetings": {"alias": "greetings", "targets": {"greetings": "0001_initial"}}}}]])
    assert back.returncode == 3
    assert "greetings.0003_data" in back.stderr and "restore" in back.stderr
    assert "mood" in columns(tmp_path)  # nothing unapplied


# --- what a stopped rollout says ----------------------------------------------------------------

class FakeRun:
    def __init__(self, plans, migrated):
        self.migration_plans, self.migrated = plans, migrated


def test_a_stopped_rollout_says_old_code_is_left_on_a_schema_it_predates():
    from backstage.engine.rollout import HostOutcome, RolloutReport
    from backstage.engine.schema import record_migrations

    plan = {"database": "greetings", "kind": "additive", "migrations": []}
    report = RolloutReport("p", "storefront", "R2", {
        "h1": HostOutcome("h1", "not switched", "R1", "R1"),
        "h2": HostOutcome("h2", "deployed", "R1", "R2")})
    record_migrations(report, {"h1": FakeRun([plan, plan], [{"database": "greetings",
                                                             "migrations": ["greetings.0002"]}]),
                               "h2": FakeRun([], [])})
    assert report.migration_plans == {"h1": [plan]}
    assert report.schema == ("h1: the previous release serves on a schema it predates: "
                             "greetings.0002 stay applied and it does not know them")
    quiet = RolloutReport("p", "storefront", "R2", {"h1": HostOutcome("h1", "not switched")})
    record_migrations(quiet, {"h1": FakeRun([plan], [])})  # refused: nothing migrated
    assert quiet.schema is None


# --- deciding a rollback ------------------------------------------------------------------------

def test_a_rollback_onto_migrations_its_release_does_not_know_is_refused_unless_told():
    import pytest

    from backstage.errors import BackstageError
    from backstage.operations.schema import decide, read_unknown

    answer = json.dumps({
        "users": {"alias": "users", "unknown": ["greetings.0003_x"], "targets": {}},
        "greetings": {"alias": "default", "unknown": ["greetings.0003_x"],
                      "targets": {"greetings": "0002_y"}},
        "other": {"alias": "other", "unknown": [], "targets": {}}})
    unknown = read_unknown("Django said something\n" + answer + "\n")
    assert sorted(unknown) == ["greetings", "users"]
    assert decide("h1", "shop", "R1", {}, False, False) is None
    with pytest.raises(BackstageError, match=r"^h1: shop@R1 predates migrations applied to its "
                                             r"databases: greetings\.0003_x; rollback "
                                             r"--migrate-back .* --force"):
        decide("h1", "shop", "R1", unknown, False, False)
    assert decide("h1", "shop", "R1", unknown, True, False) \
        == "migrated back: greetings.0003_x unapplied"
    assert decide("h1", "shop", "R1", unknown, False, True).startswith(
        "FORCED: shop@R1 runs on a schema it predates: greetings.0003_x stay applied")


def test_an_operation_naming_its_model_in_its_hints_is_planned(tmp_path):
    """Django's own contrib migrations give RunPython ``hints={"model_name": ...}``; asking
    the routers about them once raised "got multiple values for keyword argument
    'model_name'" and failed a startproject's first deploy."""
    source, env = storefront(tmp_path), act_env(tmp_path)
    assert migrate(source, env, "refuse").returncode == 0
    add_migration(source, "0002_hinted", "0001_initial",
                  'migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop, '
                  'hints={"model_name": "greeting"})')
    done = migrate(source, env, "refuse")
    assert done.returncode == 0, done.stderr
    (plan,) = said_plans(done.stderr)
    assert [m["migration"] for m in plan["migrations"]] == ["greetings.0002_hinted"]
