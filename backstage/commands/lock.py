"""Commands that take and release locks on a host: one per act, one per logical database.

A deploy, rollback, start, stop or restart of an act takes the act's lock (``act/<act>``), so
two of them never run on one act at once while other acts deploy side by side; a deploy also
takes the lock of each database it migrates (``database/<name>``), as another act's deploy may
migrate it too. Locks are taken in one sorted order. A lock is a directory holding the
holder's details (``info.json``), made aside and renamed into place: the rename is atomic and
fails when the lock exists, so of two commands racing for a lock exactly one gets it, and a lock
is never seen without its holder's name. A release removes a lock only when the token in it is
the releaser's own, so nobody frees someone else's lock.
"""

import json

from backstage.commands.shell import Script, argv, q
from backstage.model import Layout

LOCKED_EXIT = 75
HELD = "deploy lock held: "


def act_lock(act: str) -> str:
    return f"act/{act}"


def database_lock(database: str) -> str:
    return f"database/{database}"


def acquire(script: Script, layout: Layout, locks: list[str], info: dict) -> Script:
    """Take each lock in order; if one is held, free the ones taken and exit
    :data:`LOCKED_EXIT`, printing ``deploy lock held: <lock> <its info.json>``."""
    script.step("lock")
    holder = script.define("BACKSTAGE_LOCK_HOLDER", json.dumps(info, sort_keys=True))
    taken: list[str] = []
    for lock in sorted(locks):
        directory = layout.lock_dir(lock)
        taking = f"{directory}.taking-{info['token']}"
        undo = "".join(f"{argv('rm', '-rf', '--', layout.lock_dir(t))}; " for t in taken)
        script.remove(taking).mkdirs([taking])
        script.raw(f"printf '%s' {holder} > {q(taking + '/info.json')}")
        script.raw(f"if ! {argv('mv', '-T', taking, directory)} 2>/dev/null; then "
                   f"{argv('rm', '-rf', '--', taking)}; {undo}"
                   f"printf '%s %s\\n' {q(HELD + lock)} "
                   f"\"$(cat {q(layout.lock_info(lock))} 2>/dev/null)\" >&2; "
                   f"exit {LOCKED_EXIT}; fi")
        taken.append(lock)
    return script


def held(stderr: str) -> tuple[str, dict] | None:
    """The lock and holder a failed :func:`acquire` printed, if it did."""
    for line in stderr.splitlines():
        if line.startswith(HELD):
            lock, _, text = line[len(HELD):].partition(" ")
            try:
                return lock, json.loads(text)
            except ValueError:
                return lock, {"by": "unknown (no info.json)" if not text else text}
    return None


def release(script: Script, layout: Layout, locks: list[str], token: str) -> Script:
    """Remove the locks this token holds."""
    for lock in locks:
        script.raw(f"if grep -qF {q(token)} {q(layout.lock_info(lock))} 2>/dev/null; then "
                   f"{argv('rm', '-rf', layout.lock_dir(lock))}; fi")
    return script


def force_release(script: Script, layout: Layout, locks: list[str]) -> Script:
    return script.step("unlock").run("rm", "-rf", *(layout.lock_dir(lock) for lock in locks))


def renew(script: Script, layout: Layout, locks: list[str], token: str) -> Script:
    """Renew the lease of the locks this token holds: their ``info.json``'s time is the lease
    (see :func:`backstage.operations.checks.lease_expired`); others' locks are left alone."""
    for lock in locks:
        info = layout.lock_info(lock)
        script.raw(f"if grep -qF {q(token)} {q(info)} 2>/dev/null; then "
                   f"{argv('touch', '-c', info)}; fi")
    return script
