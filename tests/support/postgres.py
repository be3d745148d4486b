"""A real PostgreSQL server for tests: started as the postgres user, listening on a unix
socket only (no TCP at all), in a directory fleet hosts see as ``/run/fleet-shared/pg``."""

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST_SOCKET_DIR = "/run/fleet-shared/pg"
# The example act's databases with "greetings" on this PostgreSQL (its password a secret).
GREETINGS_ON_POSTGRES = f"""
[databases.users]
[databases.greetings]
engine = "postgresql"
name = "greetings"
host = "{HOST_SOCKET_DIR}"
user = "storefront"
password_secret = "GREETINGS_PASSWORD"
"""
# A migration of the example adding a nullable field: additive, quick, and snapshotted first.
ADD_MOOD = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.AddField("greeting", "mood", models.CharField(max_length=10,
                                                                          null=True))]
"""


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@dataclass
class Postgres:
    shared: Path  # pass as Fleet(shared=...): hosts see it as /run/fleet-shared
    socket_dir: Path
    data: Path
    process: subprocess.Popen
    password: str

    def psql(self, database: str, sql: str) -> str:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-h", str(self.socket_dir), "-At",
             "-d", database, "-c", sql], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        shutil.rmtree(self.shared, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)


def start_postgres(databases: list[str], user: str = "storefront") -> Postgres:
    """initdb, start, and create ``user`` (with a password) owning ``databases``."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (./run-tests installs it)")
    shared = Path(tempfile.mkdtemp(prefix="bs-shared-"))
    shared.chmod(0o755)
    socket_dir, data = shared / "pg", Path(tempfile.mkdtemp(prefix="bs-pgdata-"))
    socket_dir.mkdir()
    shutil.chown(socket_dir, "postgres", "postgres")
    shutil.chown(data, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(binaries / "initdb"), "-D", str(data), "-A", "trust"],
                   capture_output=True, check=True)
    (data / "pg_hba.conf").write_text(
        "local all postgres peer\nlocal all all scram-sha-256\n")
    process = subprocess.Popen(
        [*as_postgres, str(binaries / "postgres"), "-D", str(data), "-k", str(socket_dir),
         "-c", "listen_addresses=", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    password = "pg-" + secrets.token_hex(12)
    server = Postgres(shared, socket_dir, data, process, password)
    deadline = time.monotonic() + 30
    while not (socket_dir / ".s.PGSQL.5432").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("PostgreSQL did not start")
        time.sleep(0.1)
    time.sleep(0.3)
    server.psql("postgres", f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    for database in databases:
        server.psql("postgres", f"CREATE DATABASE {database} OWNER {user}")
    return server
