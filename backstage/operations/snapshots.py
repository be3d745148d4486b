"""Database snapshots: taken before a deploy's migrate, listed (``snapshots``), put back
(``restore``).

A deploy snapshots each database it is about to migrate, if ``migrate`` has something to
apply there: a PostgreSQL database once, on the host that migrates it (``pg_dump -Fc``); a
sqlite database on every host, just before its migrate in the prepare (the online backup
API). Each snapshot is recorded with the release that took it; each host keeps the act's
``keep_snapshots`` newest per database. See :mod:`backstage.commands.snapshots` for where
they live and who may touch them.

What a failed migrate leaves: a sqlite database is restored from the snapshot at once (the
same rows and schema as before the deploy, asserted by its ``.dump``). A PostgreSQL database
is left to Django's transactions: each migration runs in one transaction (``atomic``, the
default on PostgreSQL), so the migration that failed left nothing; migrations the same deploy
applied before it stay applied (the live release still serves, and writes, on them). Its
snapshot is there for ``restore``.
"""

from dataclasses import dataclass

from backstage.commands import history
from backstage.commands import lock as lock_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands import snapshots as snapshots_cmd
from backstage.commands.manage import live_venue
from backstage.commands.release import Manage
from backstage.commands.shell import Script
from backstage.errors import BackstageError, UsageError
from backstage.model import Layout, Production, RunAs
from backstage.operations import checks
from backstage.operations.health import health_spec
from backstage.operations.steps import Step


def engines(production: Production, databases) -> dict[str, str]:
    return {d: production.databases[d].engine for d in databases}


def local_files(databases: dict[str, str], release: str, time: str) -> dict[str, str]:
    """The snapshot file of each sqlite database a prepare migrates (``databases``: logical
    name -> the act's alias), alias -> file name."""
    stamp = snapshots_cmd.stamp(time)
    return {alias: snapshots_cmd.file_name(stamp, database, release, "sqlite")
            for database, alias in databases.items()}


def before_migrate(script: Script, production: Production, layout: Layout, act: str,
                   release: str, manage: Manage, databases: dict[str, str],
                   run_as: RunAs | None, time: str, if_pending: bool = True) -> Script:
    """Snapshot ``databases`` (logical name -> the act's Django alias) on this host before
    they are migrated (``if_pending``: those with something to apply) or migrated back
    (``if_pending=False``: each), recorded with ``release`` and the time ``time`` (ISO UTC)."""
    return snapshots_cmd.snapshot_databases(
        script, layout, act, release, manage, databases, engines(production, databases), run_as,
        time, production.acts[act].keep_snapshots, if_pending)


@dataclass
class Snapshot:
    """One snapshot, as ``snapshots`` lists it (the hosts that hold a copy of it)."""

    id: str
    database: str
    release: str
    time: str
    size: int
    kind: str
    hosts: list[str]

    def as_dict(self) -> dict:
        return {"id": self.id, "database": self.database, "release": self.release,
                "time": self.time, "size": self.size, "kind": self.kind, "hosts": self.hosts}


def parse_listing(host: str, text: str) -> list[Snapshot]:
    """The snapshots a host lists (``NAME SIZE`` lines); anything else there is ignored."""
    found = []
    for line in text.splitlines():
        name, _, size = line.rpartition(" ")
        match = snapshots_cmd.SNAPSHOT_FILE.match(name)
        if match and size.isdigit():
            s = match.group("stamp")
            time = f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"
            found.append(Snapshot(match.group("id"), match.group("database"),
                                  match.group("release"), time, int(size), match.group("kind"),
                                  [host]))
    return found


def merge(listings: dict[str, list[Snapshot]]) -> list[Snapshot]:
    """One entry per id across hosts (a sqlite snapshot has a copy on each), newest first."""
    merged: dict[str, Snapshot] = {}
    for host in sorted(listings):
        for snapshot in listings[host]:
            if snapshot.id in merged:
                merged[snapshot.id].hosts.append(host)
                merged[snapshot.id].size = max(merged[snapshot.id].size, snapshot.size)
            else:
                merged[snapshot.id] = snapshot
    return sorted(merged.values(), key=lambda s: (s.time, s.id), reverse=True)


def file_of(snapshot: Snapshot) -> str:
    return f"{snapshot.id}@{snapshot.release}.{snapshot.kind}"


def find(act: str, snapshots: list[Snapshot], snapshot_id: str) -> Snapshot:
    """The snapshot ``--snapshot`` names, or a UsageError saying which there are."""
    for snapshot in snapshots:
        if snapshot.id == snapshot_id:
            return snapshot
    known = ", ".join(s.id for s in snapshots[:5]) or "none"
    raise UsageError(f"--snapshot: no snapshot {snapshot_id!r} of act {act!r} on its hosts "
                     f"(newest: {known}; `snapshots {act}` lists them)")


def plan_stop(layout: Layout, python: str, act: str, release: str, holder: dict) -> Step:
    """Take the act's lock and stop its live release: nothing serves while it is restored."""
    script = lock_cmd.acquire(Script(), layout, [lock_cmd.act_lock(act)], holder)
    sess_cmd.stop(script, layout, python, act, release)
    return Step("stop", f"stop {act}@{release}", script.text())


def plan_restore(production: Production, layout: Layout, act: str, release: str,
                 run_as: RunAs | None, snapshot: Snapshot) -> Step:
    """Put the snapshot back with the live release's code, as the act."""
    manage = Manage.of(production, act, layout, release, "")
    script = live_venue(Script(), layout, act, release)
    alias = production.acts[act].database_alias(snapshot.database)
    snapshots_cmd.restore_database(script, layout, act, release, manage, run_as, alias,
                                   file_of(snapshot))
    return Step("restore", f"restore {snapshot.database} from {snapshot.id}", script.text())


def plan_start(production: Production, layout: Layout, python: str, act: str, release: str,
               holder: dict, record: dict) -> Step:
    """Start the live release again, health-checked; record what was done; unlock."""
    script = sess_cmd.start(Script(), layout, act, release)
    sess_cmd.health_check(script, layout, python, act, release, health_spec(production, act))
    history.append(script, layout, {"time": holder["time"], "event": "restore", "act": act,
                                    "release": release, "by": holder["by"], **record})
    lock_cmd.release(script, layout, [lock_cmd.act_lock(act)], holder["token"])
    return Step("start", f"start {act}@{release}", script.text())


def run_as(production: Production, run, observed, act: str) -> RunAs | None:
    """The act's unix identity on the host (system layout; None in the user layout)."""
    if run.layout.kind != "system":
        return None
    return checks.act_user(run.name, observed, production.act_user(act),
                           production.hosts[run.name].nginx_group)


def merge_phases(phases: list[dict]) -> dict:
    """Per host, what each phase did there, or the first error it met."""
    merged: dict = {}
    for phase in phases:
        for host, result in phase.items():
            if isinstance(merged.get(host), BackstageError):
                continue
            merged[host] = result if isinstance(result, BackstageError) \
                else [*merged.get(host, []), *result]
    return merged
