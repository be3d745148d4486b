"""Snapshot benchmark: what the snapshot before a migrate costs on a ~200 MB PostgreSQL database.

One fleet host, a real PostgreSQL server (unix socket only, tests/support/postgres.py) holding
the example act's ``greetings`` database, filled with ``--megabytes`` (default 200) of greeting
rows of random text. Then, each timed as a user runs it (``backstage deploy-act``, CLI start
included):

* a deploy with a migration of ``greetings`` (a nullable ``AddField``: a catalogue change on
  PostgreSQL, instant), so its ``migrate`` step is the ``pg_dump -Fc`` snapshot plus Django's
  start and an instant migrate;
* a deploy with a one-line template change (no migration, no snapshot), for comparison.

Printed: the database's size (``pg_database_size``), the snapshot's size (as ``snapshots``
lists it), the ``migrate`` step's seconds and each deploy's wall seconds.

Run as root: ``.venv/bin/python bench/snapshot.py [--megabytes N]`` (a few minutes).
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchlib import edit, machine, table, timed

from tests.support.postgres import ADD_MOOD, GREETINGS_ON_POSTGRES, start_postgres
from tests.support.testbed import make_stage

HOME = "greetings/templates/greetings/home.html"
ROW_BYTES = 180  # about what one row below takes on disk, header and index entry included


def fill(postgres, megabytes: int) -> str:
    """Insert greetings of random text until the database is about ``megabytes``; its size."""
    rows = megabytes * 1024 * 1024 // ROW_BYTES
    postgres.psql("greetings", "INSERT INTO greetings_greeting (text, created) "
                               "SELECT md5(random()::text) || md5(random()::text) || "
                               "md5(random()::text), now() "
                               f"FROM generate_series(1, {rows})")
    postgres.psql("greetings", "VACUUM ANALYZE greetings_greeting")
    return postgres.psql("greetings", "SELECT pg_size_pretty(pg_database_size('greetings'))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    options = parser.parse_args()
    postgres = start_postgres(["greetings"])
    try:
        work = Path(tempfile.mkdtemp(prefix="bs-bench-snapshot-"))
        stage = make_stage(work, "bench", {"h1": 'roles = ["web"]'}, prefix="bsbench",
                           databases=GREETINGS_ON_POSTGRES,
                           secrets={"GREETINGS_PASSWORD": postgres.password},
                           requirements=("psycopg[binary]>=3.1",), shared=postgres.shared)
        try:
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            size = fill(postgres, options.megabytes)
            (stage.source / "greetings" / "migrations" / "0002_mood.py").write_text(ADD_MOOD)
            migrated = timed(stage, "deploy-act", "storefront")
            listed = json.loads(stage.cli("snapshots", "storefront", "--json").stdout)
            [snapshot] = [s for s in listed["snapshots"] if s["database"] == "greetings"]
            edit(stage, HOME, "<h1>", "<h1>Again ")
            plain = timed(stage, "deploy-act", "storefront")
        finally:
            stage.fleet.stop()
    finally:
        postgres.stop()
    print(machine())
    print("load average (1, 5, 15 min) at the end: "
          + " ".join(f"{load:.1f}" for load in os.getloadavg()))
    print(table(["what", "seconds", "size"], [
        ["PostgreSQL database greetings", "", size],
        ["snapshot (pg_dump -Fc) + migrate step", f"{migrated.step_seconds['migrate'][0]:.2f}",
         f"{snapshot['size'] / 1024 / 1024:.1f} MiB"],
        ["deploy-act with the migration (snapshot taken)", f"{migrated.seconds:.2f}", ""],
        ["deploy-act without a migration (no snapshot)", f"{plain.seconds:.2f}", ""],
    ]))


if __name__ == "__main__":
    main()
