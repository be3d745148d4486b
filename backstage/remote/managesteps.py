"""The management steps of a prepare in one Python process, run by the venue's Python as the act.

``python -c <this> MANAGE STEPS``: MANAGE is the act's manage.py (its folder goes first on
``sys.path``, as when manage.py runs), STEPS a JSON list of ``[name, command, options]``.
Django is set up once, then each command runs through ``call_command``; before each, the
step's name goes to stderr as the deploy script's own steps announce themselves, so the
report shows each step's output and time apart. The first failing step ends the process with
status 1, its error said as ``manage.py`` says it (a traceback only for unexpected errors).

Starting Django once instead of once per command saves its start (a third of a second or
more each on a loaded host) for every step after the first. A ``migrate`` with nothing to apply
is skipped and its step named ``migrate DB: skipped (unchanged)``. Standard library and Django
only.

Before each ``migrate``, the migrations it would apply are described and classified
(:mod:`backstage.remote.migrations`) and said on stderr as one ``::migrations <json>`` line;
with the policy ``refuse``, a plan with a destructive or irreversible operation ends the
process with status 3 before anything is migrated, in one line naming the migration and the
operation. Three steps of Backstage's own (not Django commands) read without writing or undo
migrations: ``plan-migrations`` (what ``plan`` shows), ``unknown-migrations`` (run in an older
release: the applied migrations its code does not know, and the migration of each app it
knows last) and ``migrate-back`` (run in the live release: unapply those, refused with status 3
when one cannot be reversed).

A ``snapshot`` step (``{"database": ALIAS, "fd": N}``, just before the migrate of a sqlite
database) copies the database through sqlite's online backup API and writes the copy to file
descriptor N, a file root opened in its own backups folder; skipped, like the migrate, when
there is nothing to apply, and when no migration was ever applied (nothing to keep). If the migrate after it fails, the database is put back as
the copy has it (byte for byte the same ``.dump``) before the process exits.

A step marked ``backstage_sqlite_only`` (the project's own database) runs only where that
is a sqlite file.
"""

import json
import os
import shutil
import sys
import tempfile

from backstage.remote.migrating import never_migrated, nothing_to_apply, sqlite_copy
from backstage.remote.migrations import classify, worst

STEP_MARKER = "::step "
PLAN_MARKER = "::migrations "
MIGRATED_MARKER = "::migrated "
REFUSED = 3  # the exit status of a refusal by policy (not a failure of the release)
SNAPSHOTS: dict[str, str] = {}  # alias -> the copy a failed migrate of it is restored from
PENDING: dict[str, bool] = {}  # alias -> whether its migrate has work (its snapshot step asked)


def main():
    manage, steps = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, os.path.dirname(os.path.abspath(manage)))
    sys.argv = [manage]
    policed = [step for step in steps if step[1] == "migrate" and "backstage" in step[2]]
    snapshots = {step[2]["database"]: step for step in steps if step[1] == "snapshot"}
    for number, step in enumerate(steps):
        name, command, options = step
        sys.stdout.flush()
        if options.pop("backstage_sqlite_only", False) and not is_sqlite(options["database"]):
            print(f"{STEP_MARKER}{name}: skipped (not a sqlite file of this host)",
                  file=sys.stderr, flush=True)
            continue
        if step in policed:
            if step is policed[0]:
                migrate_under_policy(policed, snapshots)
            continue
        if command == "snapshot" and policed:
            continue  # taken just before its migrate, once every plan was checked
        if command in OWN_STEPS:
            print(STEP_MARKER + name, file=sys.stderr, flush=True)
            setup()
            OWN_STEPS[command](**options)
            continue
        if number and command == "snapshot":
            PENDING[options["database"]] = not nothing_to_apply(options["database"])
            if not PENDING[options["database"]] or never_migrated(options["database"]):
                continue  # its migrate says whether it is skipped
        if number and command == "migrate" and not pending(options["database"]):
            print(f"{STEP_MARKER}{name}: skipped (unchanged)", file=sys.stderr, flush=True)
            continue
        if number and command == "collectstatic" and not static_files_installed():
            print(f"{STEP_MARKER}{name}: skipped (no django.contrib.staticfiles)",
                  file=sys.stderr, flush=True)
            continue
        print(STEP_MARKER + name, file=sys.stderr, flush=True)
        if number == 0:  # in the first step: an app that fails to import fails there
            setup()
        if command == "snapshot":
            snapshot(options["database"], options["fd"])
        else:
            run_restoring(command, options)


READY = []  # holds True once Django is set up


def setup() -> None:
    """Set Django up, once per process."""
    if not READY:
        import django

        django.setup()
        READY.append(True)


def static_files_installed() -> bool:
    """An act without ``django.contrib.staticfiles`` has no ``collectstatic``, and nothing to
    collect (an API-only service, say)."""
    from django.apps import apps

    return apps.is_installed("django.contrib.staticfiles")


def pending(alias: str) -> bool:
    """Whether migrate has work in the database: as the snapshot step just before it found,
    else asked now (the migration graph is loaded once per database, not twice)."""
    known = PENDING.pop(alias, None)
    return not nothing_to_apply(alias) if known is None else known


def sqlite_file(alias: str) -> str:
    from django.db import connections

    return connections[alias].settings_dict["NAME"]


def snapshot(alias: str, fd: int) -> None:
    """Copy the database beside itself (the act's to write), then its bytes to ``fd``."""
    path = sqlite_file(alias)
    handle, copy = tempfile.mkstemp(prefix=".snapshot-", dir=os.path.dirname(path))
    os.close(handle)
    SNAPSHOTS[alias] = copy
    sqlite_copy(path, copy)
    with open(copy, "rb") as data, os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(data, out)


def run_restoring(command: str, options: dict) -> None:
    """Run a command; a failing migrate of a snapshotted database restores it first."""
    copy = SNAPSHOTS.pop(options.get("database", ""), None) if command == "migrate" else None
    try:
        run(command, options)
    except BaseException:
        if copy:
            from django.db import connections

            connections.close_all()
            sqlite_copy(copy, sqlite_file(options["database"]))
            print(f"restored database {options['database']!r} as it was before the migrate",
                  file=sys.stderr, flush=True)
        raise
    finally:
        if copy:
            os.unlink(copy)


def is_sqlite(database: str) -> bool:
    """Whether the database is a sqlite file (the project's own, on this host)."""
    from django.db import connections

    return connections[database].vendor == "sqlite"


def migrate_under_policy(steps: list, snapshots: dict) -> None:
    """The ``migrate`` steps with a policy (``options["backstage"]``: the logical
    ``database``, ``destructive``: ``refuse`` or ``allow``, ``check_only``: a database
    migrated elsewhere, only checked): every plan is said and checked first; a destructive or
    irreversible operation that the policy refuses ends the process with status 3 before any
    database is migrated, in one line naming the migration and the operation. A database
    with a ``snapshot`` step (``snapshots``: alias -> step) is copied just before its migrate
    (when it had migrations applied: else there is nothing to keep) and put back if it fails."""
    setup()
    plans = [(name, options, migration_plan(options["database"]))
             for name, _, options in steps]
    for _, options, plan in plans:
        say_plan(options["backstage"]["database"], plan)
    for name, options, plan in plans:
        blocking = [(m["migration"], op) for m in plan if not m["fresh"]
                    for op in m["operations"] if op["kind"] != "additive"]
        if blocking and options["backstage"].get("destructive") != "allow":
            print(STEP_MARKER + name, file=sys.stderr, flush=True)
            refuse(options["backstage"]["database"], blocking)
    for name, options, plan in plans:
        if options["backstage"].get("check_only"):
            continue
        if not plan:
            print(f"{STEP_MARKER}{name}: skipped (unchanged)", file=sys.stderr, flush=True)
            continue
        alias = options["database"]
        if alias in snapshots and not never_migrated(alias):
            print(STEP_MARKER + snapshots[alias][0], file=sys.stderr, flush=True)
            snapshot(alias, snapshots[alias][2]["fd"])
        print(STEP_MARKER + name, file=sys.stderr, flush=True)
        run_restoring("migrate", {k: v for k, v in options.items() if k != "backstage"})
        print(MIGRATED_MARKER + json.dumps({"database": options["backstage"]["database"],
                                            "migrations": [m["migration"] for m in plan]}),
              file=sys.stderr, flush=True)


def refuse(database: str, blocking: list) -> None:
    migration, op = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    print(f"{database}: {migration}: {op['description']} is {op['kind']} ({op['why']}){more}: "
          "nothing migrated; deploy with --allow-destructive (or allow_destructive = true in "
          "the act's inventory) to apply it", file=sys.stderr, flush=True)
    sys.exit(REFUSED)


def say_plan(database: str, plan: list) -> None:
    print(PLAN_MARKER + json.dumps({"database": database, "migrations": plan,
                                    "kind": worst(op["kind"] for m in plan if not m["fresh"]
                                                  for op in m["operations"]) if plan else None}),
          file=sys.stderr, flush=True)


def migration_plan(alias: str, targets=None) -> list:
    """The migrations ``migrate`` would apply (or unapply, toward ``targets``), each with its
    operations described and classified; reads the database, writes nothing."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[alias])
    loader = executor.loader
    plan = executor.migration_plan(targets or loader.graph.leaf_nodes())
    # An app with nothing applied yet has no table to lose: its history's operations (a field
    # removed long ago, say) act on tables this very plan creates.
    started = {app for app, _ in loader.applied_migrations}
    described = []
    for migration, backwards in plan:
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        operations = []
        for operation in migration.operations:
            if applies(operation, alias, migration.app_label):
                facts = describe(operation, state, migration.app_label)
                kind, why = classify(facts)
                operations.append({"description": facts["description"], "operation":
                                   facts["operation"], "kind": kind, "why": why})
            operation.state_forwards(migration.app_label, state)
        described.append({"migration": f"{migration.app_label}.{migration.name}",
                          "backwards": backwards, "operations": operations,
                          "fresh": migration.app_label not in started})
    return described


def applies(operation, alias: str, app: str) -> bool:
    """Whether the operation changes this database: the database routers decide, as the
    operation itself asks them when it runs (elsewhere it is only recorded as applied)."""
    from django.db import router

    model = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    hints = dict(getattr(operation, "hints", {}) or {})
    model = model.lower() if isinstance(model, str) and not hasattr(operation, "code") \
        and not hasattr(operation, "sql") else None
    # RunPython/RunSQL may name their model in their hints (Django's own contrib migrations).
    model = hints.pop("model_name", model)
    return router.allow_migrate(alias, app, model_name=model, **hints) is not False


def describe(operation, state, app: str) -> dict:
    """What :func:`backstage.remote.migrations.classify` reads of an operation."""
    name = type(operation).__name__
    facts = {"operation": name, "description": operation.describe(),
             "reversible": bool(getattr(operation, "reversible", True))}
    if name in ("AddField", "AlterField"):
        facts["field"] = field_facts(operation.field)
    if name == "AlterField":
        model = state.models.get((app, operation.model_name_lower))
        old = model.fields.get(operation.name) if model else None
        facts["old_field"] = field_facts(old) if old is not None else {}
    if name == "SeparateDatabaseAndState":
        facts["database_operations"] = [describe(part, state, app)
                                        for part in operation.database_operations]
    return facts


def field_facts(field) -> dict:
    from django.db.models import NOT_PROVIDED

    return {"null": bool(field.null), "many_to_many": bool(field.many_to_many),
            "default": field.has_default()
            or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED,
            "type": type(field).__name__, "column": field.db_column,
            **{key: getattr(field, key, None)
               for key in ("max_length", "max_digits", "decimal_places")}}


def plan_migrations(databases: dict) -> None:
    """``plan``: say what ``migrate`` would apply to each database (logical -> alias)."""
    for database, alias in databases.items():
        say_plan(database, migration_plan(alias))


def unknown_migrations(databases: dict) -> None:
    """Run in an older release's code: per database, the applied migrations this code does not
    know, and per app of theirs the last migration it knows (None: none), as JSON on stdout."""
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader

    found = {}
    for database, alias in databases.items():
        loader = MigrationLoader(connections[alias])
        known = set(loader.graph.nodes)
        unknown = sorted(node for node in loader.applied_migrations if node not in known
                         and node[0] in loader.migrated_apps)
        apps = sorted({app for app, _ in unknown})
        leaves = {app: max((n for n in loader.graph.leaf_nodes() if n[0] == app),
                           default=(app, None))[1] for app in apps}
        found[database] = {"alias": alias, "unknown": [f"{a}.{n}" for a, n in unknown],
                           "targets": leaves}
    print(json.dumps(found))


def migrate_back(databases: dict) -> None:
    """Run in the live release's code: per database (logical -> ``{"alias", "targets"}``),
    unapply the migrations after each app's target (None: all of the app's). Refused with
    status 3 before any is unapplied when one cannot be reversed (Django refuses it on every
    database it is recorded in, whatever the routers say)."""
    from django.core.management import call_command
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    for database, entry in databases.items():
        executor = MigrationExecutor(connections[entry["alias"]])
        for migration, _ in executor.migration_plan(sorted(entry["targets"].items())):
            stuck = [op for op in migration.operations if not getattr(op, "reversible", True)]
            if stuck:
                print(f"{database}: {migration.app_label}.{migration.name}: "
                      f"{stuck[0].describe()} cannot be reversed: nothing migrated back; "
                      "bring the data back with restore instead", file=sys.stderr, flush=True)
                sys.exit(REFUSED)
    for database, entry in databases.items():
        for app, target in sorted(entry["targets"].items()):
            call_command("migrate", app, target or "zero", database=entry["alias"],
                         interactive=False)


OWN_STEPS = {"plan-migrations": plan_migrations, "unknown-migrations": unknown_migrations,
             "migrate-back": migrate_back}


def run(command: str, options: dict) -> None:
    from django.core.management import call_command, get_commands
    from django.core.management.base import CommandError

    if command not in get_commands():  # as manage.py says it (settings without the app)
        print(f"Unknown command: {command!r}", file=sys.stderr)
        sys.exit(1)
    try:
        call_command(command, **options)
    except CommandError as exc:  # SystemCheckError included: manage.py's way to say it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    # Any other error propagates: Python prints its traceback and exits with status 1.


main()
