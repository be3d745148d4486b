"""The management steps of a prepare in one Python process, run by the venue's Python as the act.

``python -c <this> MANAGE STEPS``: MANAGE is the act's manage.py (its folder goes first on
``sys.path``, as when manage.py runs), STEPS a JSON list of ``[name, command, options]``.
Django is set up once, then each command runs through ``call_command``; before each, the
step's name goes to stderr as the deploy script's own steps announce themselves, so the
report shows each step's output and time apart. The first failing step ends the process with
status 1, its error said as ``manage.py`` says it (a traceback only for unexpected errors).

Starting Django once instead of once per command saves its start (a third of a second or
more each on a loaded host) for every step after the first. A ``migrate`` with nothing to apply
is skipped and its step named ``migrate DB: skipped (unchanged)``; a step marked
``backstage_sqlite_only`` (the project's own database) runs only where that is a sqlite file.
Standard library and Django only.
"""

import json
import os
import sys

STEP_MARKER = "::step "


def main():
    manage, steps = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, os.path.dirname(os.path.abspath(manage)))
    sys.argv = [manage]
    for number, (name, command, options) in enumerate(steps):
        sys.stdout.flush()
        if options.pop("backstage_sqlite_only", False) and not is_sqlite(options["database"]):
            print(f"{STEP_MARKER}{name}: skipped (not a sqlite file of this host)",
                  file=sys.stderr, flush=True)
            continue
        if number and command == "migrate" and nothing_to_apply(options["database"]):
            print(f"{STEP_MARKER}{name}: skipped (unchanged)", file=sys.stderr, flush=True)
            continue
        if number and command == "collectstatic" and not static_files_installed():
            print(f"{STEP_MARKER}{name}: skipped (no django.contrib.staticfiles)",
                  file=sys.stderr, flush=True)
            continue
        print(STEP_MARKER + name, file=sys.stderr, flush=True)
        if number == 0:  # in the first step: an app that fails to import fails there
            import django

            django.setup()
        run(command, options)


def static_files_installed() -> bool:
    """An act without ``django.contrib.staticfiles`` has no ``collectstatic``, and nothing to
    collect (an API-only service, say)."""
    from django.apps import apps

    return apps.is_installed("django.contrib.staticfiles")


def is_sqlite(database: str) -> bool:
    """Whether the database is a sqlite file (the project's own, on this host)."""
    from django.db import connections

    return connections[database].vendor == "sqlite"


def nothing_to_apply(database: str) -> bool:
    """Whether ``migrate`` would apply nothing to the database: every migration of the code is
    recorded in the database's own ``django_migrations``, as migrate itself finds out (it would
    then still run its post-migrate handlers, which have nothing new to do). Read each deploy,
    so a migration unapplied by hand on the host is applied again."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[database])
    return not executor.migration_plan(executor.loader.graph.leaf_nodes())


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
