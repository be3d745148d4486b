"""Commands that snapshot an act's databases before a migrate, list, prune and restore them.

Snapshots live in ``backups/<act>/`` (root's, 0700; each file 0600): the act's code makes
their bytes (``pg_dump``, sqlite's backup API, run as the act with its credentials), but only
through a pipe or a descriptor root opened, so the act can neither change a snapshot nor
point root at another file, and a compromised act cannot remove its own way back.

A snapshot's file name says everything the listing shows but its size:
``<stamp>-<database>@<release>.<pgdump|sqlite3>``; ``<stamp>-<database>`` is its id (the
deploy's time, so the sqlite snapshots one deploy took on several hosts share an id).
"""

import re

# The module, not its names: release.py uses this one (a deploy's sqlite snapshots).
from backstage.commands import release as release_cmd
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, RunAs
from backstage.remote import standalone

SNAPSHOT_FILE = re.compile(
    r"^(?P<id>(?P<stamp>\d{8}T\d{6})-(?P<database>[A-Za-z0-9_.-]+))@(?P<release>[^/@]+)"
    r"\.(?P<kind>pgdump|sqlite3)$")
PARTIAL = ".partial"


def stamp(time: str) -> str:
    """The id's time part from a lock's UTC time: ``2026-11-29T18:48:36.123Z`` ->
    ``20261129T184836``."""
    return re.sub(r"[-:]", "", time)[:15]


def file_name(stamp_: str, database: str, release: str, engine: str) -> str:
    kind = "sqlite3" if engine == "sqlite" else "pgdump"
    return f"{stamp_}-{database}@{release}.{kind}"


def backups_folder(script: Script, layout: Layout, act: str) -> Script:
    """Make ``backups/<act>/``, its owner's alone (root's in the system layout)."""
    return script.run("install", "-d", "-m", "0700", layout.backups, layout.act_backups(act))


def keep_finished(layout: Layout, act: str, files: list[str], keep: int) -> str:
    """Shell text: each partial snapshot becomes the snapshot if it holds anything (nothing
    was written where there was nothing to migrate), then each database keeps its ``keep``
    newest snapshots."""
    folder = layout.act_backups(act)
    lines = []
    for name in files:
        partial, final = f"{folder}/{name}{PARTIAL}", f"{folder}/{name}"
        lines.append(f"if [ -s {q(partial)} ]; then {argv('mv', '-f', partial, final)}; "
                     f"else {argv('rm', '-f', partial)}; fi")
        database = SNAPSHOT_FILE.match(name).group("database")
        mine = argv("find", folder, "-maxdepth", "1", "-type", "f", "-name",
                    f"????????T??????-{database}@*", "!", "-name", "*" + PARTIAL)
        lines.append(f"{mine} -printf '%f\\n' | sort -r | tail -n +{keep + 1}"
                     f" | while IFS= read -r f; do rm -f -- {q(folder)}/\"$f\"; done")
    return "; ".join(lines) or ":"


def local_descriptors(script: Script, layout: Layout, act: str, files: list[str]) -> str:
    """Make each partial snapshot (empty, 0600, in root's folder); the shell redirections
    opening them on descriptors 3, 4... for :mod:`backstage.remote.managesteps`'s
    ``snapshot`` steps (in the order given)."""
    folder = layout.act_backups(act)
    partials = [f"{folder}/{name}{PARTIAL}" for name in files]
    if partials:
        backups_folder(script, layout, act)
        for partial in partials:
            script.run("install", "-m", "0600", "/dev/null", partial)
    return "".join(f" {3 + i}>{q(partial)}" for i, partial in enumerate(partials))


def with_snapshots(steps: list[list], files: dict[str, str]) -> list[list]:
    """managesteps' steps with a ``snapshot`` step before each migrate of a database in
    ``files`` (alias -> snapshot file name), writing to descriptor 3, 4... in that order."""
    descriptors = {alias: 3 + i for i, alias in enumerate(files)}
    done = []
    for step in steps:
        alias = step[2].get("database") if step[1] == "migrate" else None
        if alias in descriptors:
            database = SNAPSHOT_FILE.match(files[alias]).group("database")
            done.append([f"snapshot {database}", "snapshot",
                         {"database": alias, "fd": descriptors[alias]}])
        done.append(step)
    return done


def snapshot_function(layout: Layout, act: str, release: str, manage: "release_cmd.Manage",
                      run_as: RunAs | None, python: str) -> str:
    """A shell function ``dbsnapshot dump|restore ALIAS [--if-pending]`` running
    :mod:`backstage.remote.dbsnapshot` with the release's code as the act (``python``: shell
    words for the venue's interpreter, expanded by the calling shell, not the act's)."""
    program = argv("-c", standalone("dbsnapshot"), layout.in_release(act, release, manage.manage))
    function = release_cmd.act_function("in_act_snapshot", layout, act, release, manage, run_as)
    return f'{function}; dbsnapshot() {{ in_act_snapshot {python} {program} "$@"; }}'


def snapshot_databases(script: Script, layout: Layout, act: str, release: str, manage: "release_cmd.Manage",
                       databases: dict[str, str], engines: dict[str, str], run_as: RunAs | None,
                       time: str, keep: int, if_pending: bool = True) -> Script:
    """Snapshot databases (logical name -> the act's Django alias) with the release's code,
    into ``backups/<act>/`` (recorded with ``release``), keeping ``keep`` per database.

    ``if_pending``: only those ``migrate`` would change (a deploy's, before its migrate);
    without it, each (before migrations are reversed, say). ``engines``: logical name ->
    ``sqlite``/``postgresql``. A snapshot that fails stops the script before anything else
    changes the database.
    """
    backups_folder(script, layout, act)
    python = q(f"{manage.venue_dir}/bin/python")
    script.raw(snapshot_function(layout, act, release, manage, run_as, python))
    folder = layout.act_backups(act)
    for database, alias in databases.items():
        name = file_name(stamp(time), database, release, engines[database])
        partial = f"{folder}/{name}{PARTIAL}"
        script.step(f"snapshot {database}")
        words = argv("dump", alias, *(["--if-pending"] if if_pending else []))
        script.raw(f"if ! (umask 077 && dbsnapshot {words} > {q(partial)}); then "
                   f"{argv('rm', '-f', partial)}; exit 1; fi")
        script.raw(keep_finished(layout, act, [name], keep))
    return script


def list_snapshots(layout: Layout, act: str) -> str:
    """``NAME SIZE`` of each snapshot of the act on the host (nothing if none)."""
    folder = layout.act_backups(act)
    return (f"if [ -d {q(folder)} ]; then {argv('find', folder, '-maxdepth', '1', '-type', 'f')}"
            f" ! -name {q('*' + PARTIAL)} -printf '%f %s\\n'; fi")


def restore_database(script: Script, layout: Layout, act: str, release: str, manage: "release_cmd.Manage",
                     run_as: RunAs | None, alias: str, name: str) -> Script:
    """Put a snapshot back into the database with the live release's code, as the act (its
    bytes fed on stdin by root, who opens the file), after :func:`.manage.live_venue`."""
    script.raw(snapshot_function(layout, act, release, manage, run_as, '"$venue/bin/python"'))
    script.step(f"restore {SNAPSHOT_FILE.match(name).group('database')}")
    return script.raw(f"dbsnapshot restore {q(alias)} < {q(layout.act_backups(act) + '/' + name)}")
