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

A ``snapshot`` step (``{"database": ALIAS, "fd": N}``, just before the migrate of a sqlite
database) copies the database through sqlite's online backup API and writes the copy to file
descriptor N, a file root opened in its own backups folder; skipped, like the migrate, when
there is nothing to apply, and when no migration was ever applied (nothing to keep). If the migrate after it fails, the database is put back as the
copy has it (byte for byte the same ``.dump``) before the process exits.

A step marked ``backstage_sqlite_only`` (the project's own database) runs only where that
is a sqlite file.
"""

import json
import os
import shutil
import sys
import tempfile

from backstage.remote.migrating import never_migrated, nothing_to_apply, sqlite_copy

STEP_MARKER = "::step "
SNAPSHOTS: dict[str, str] = {}  # alias -> the copy a failed migrate of it is restored from
PENDING: dict[str, bool] = {}  # alias -> whether its migrate has work (its snapshot step asked)


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
            import django

            django.setup()
        if command == "snapshot":
            snapshot(options["database"], options["fd"])
        else:
            run_restoring(command, options)


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


def static_files_installed() -> bool:
    """An act without ``django.contrib.staticfiles`` has no ``collectstatic``, and nothing to
    collect (an API-only service, say)."""
    from django.apps import apps

    return apps.is_installed("django.contrib.staticfiles")


def is_sqlite(database: str) -> bool:
    """Whether the database is a sqlite file (the project's own, on this host)."""
    from django.db import connections

    return connections[database].vendor == "sqlite"


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
