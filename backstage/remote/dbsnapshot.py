"""Snapshot or restore one of an act's databases, run by the venue's Python as the act.

``python -c <this> MANAGE dump ALIAS [--if-pending]`` writes a snapshot of the database
Django's alias ALIAS names to stdout; ``--if-pending``: only if ``migrate`` would apply
something to it, and some migration was applied before (else nothing is written). ``python -c <this> MANAGE restore ALIAS`` puts
the snapshot read from stdin back. Root opens and keeps the snapshot files (in a folder of
its own): the act only ever sees their bytes through a pipe, so it can neither change a
snapshot nor point root at another file.

PostgreSQL: ``pg_dump -Fc`` and ``pg_restore --clean --if-exists --single-transaction``
(``pg_dump`` and ``pg_restore`` must be on the host, e.g. Debian's ``postgresql-client``).
Their password goes in a temporary password file (``PGPASSFILE``, 0600), never in argv.
sqlite: the online backup API (:meth:`sqlite3.Connection.backup`), safe while the live release
writes. The connection settings are Django's own (``django.setup()`` with the act's settings),
so the database snapshotted is the one ``migrate`` changes. Standard library and Django only.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from backstage.remote.migrating import never_migrated, nothing_to_apply, sqlite_copy


def main():
    manage, action, alias, options = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the act's settings print goes to stderr, not into a snapshot
    sys.path.insert(0, os.path.dirname(os.path.abspath(manage)))
    sys.argv = [manage]
    import django

    django.setup()
    from django.db import connections

    settings = connections[alias].settings_dict
    if action == "dump":
        if "--if-pending" in options and (never_migrated(alias) or nothing_to_apply(alias)):
            return
        connections.close_all()
        dump(settings, out)
    else:
        connections.close_all()
        restore(settings, sys.stdin.buffer)
    out.close()


def is_sqlite(settings: dict) -> bool:
    return settings["ENGINE"].endswith("sqlite3")


def dump(settings: dict, out) -> None:
    if is_sqlite(settings):
        with temporary(settings["NAME"]) as copy:
            sqlite_copy(settings["NAME"], copy)
            with open(copy, "rb") as data:
                shutil.copyfileobj(data, out)
    else:
        postgres(settings, "pg_dump", ["-Fc"], stdout=out)


def restore(settings: dict, source) -> None:
    if is_sqlite(settings):
        with temporary(settings["NAME"]) as copy:
            with open(copy, "wb") as data:
                shutil.copyfileobj(source, data)
            sqlite_copy(copy, settings["NAME"])
    else:
        postgres(settings, "pg_restore", ["--clean", "--if-exists", "--no-owner",
                                          "--single-transaction", "--exit-on-error"],
                 stdin=source)


class temporary:
    """A temporary file beside ``path`` (same filesystem, the act's to write), removed after."""

    def __init__(self, path: str):
        handle, self.name = tempfile.mkstemp(prefix=".snapshot-",
                                             dir=os.path.dirname(os.path.abspath(path)))
        os.close(handle)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc):
        os.unlink(self.name)


def postgres(settings: dict, program: str, options: list[str], **streams) -> None:
    """Run ``pg_dump``/``pg_restore`` on the database, its password in a password file."""
    if shutil.which(program) is None:
        sys.exit(f"{program} not found on this host: install PostgreSQL's client programs "
                 "(Debian: postgresql-client), which database snapshots use")
    connection = [f"--{key}={value}" for key, value in (
        ("host", settings.get("HOST")), ("port", settings.get("PORT")),
        ("username", settings.get("USER"))) if value]
    with tempfile.NamedTemporaryFile("w", prefix="pgpass-") as passfile:
        password = str(settings.get("PASSWORD") or "").replace("\\", "\\\\").replace(":", "\\:")
        passfile.write(f"*:*:*:*:{password}\n")
        passfile.flush()
        environment = {**os.environ, "PGPASSFILE": passfile.name}
        done = subprocess.run([program, *options, *connection, "--dbname", settings["NAME"]],
                              check=False, env=environment, **streams)
    if done.returncode:
        sys.exit(f"{program} failed (exit status {done.returncode})")


main()
