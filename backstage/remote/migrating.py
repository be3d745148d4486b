"""What managesteps and dbsnapshot both ask of Django and sqlite (standard library and Django
only): joined into their text where they import it (see :func:`backstage.remote.standalone`)."""

import sqlite3
from contextlib import closing


def never_migrated(database: str) -> bool:
    """Whether no migration was ever recorded in the database (a first deploy's): there is
    nothing a snapshot of it could bring back."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    return not MigrationRecorder(connections[database]).has_table()


def nothing_to_apply(database: str) -> bool:
    """Whether ``migrate`` would apply nothing to the database: every migration of the code is
    recorded in the database's own ``django_migrations``, as migrate itself finds out (it would
    then still run its post-migrate handlers, which have nothing new to do). Read each deploy,
    so a migration unapplied by hand on the host is applied again."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[database])
    return not executor.migration_plan(executor.loader.graph.leaf_nodes())


def sqlite_copy(source: str, target: str) -> None:
    """Copy a sqlite database page by page through the online backup API (safe while others
    read and write it)."""
    with closing(sqlite3.connect(source)) as a, closing(sqlite3.connect(target)) as b:
        a.backup(b)
