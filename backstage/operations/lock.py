"""``lock`` and ``unlock`` on one host, and what a lock records about its holder."""

import getpass
import os
import secrets
import socket

from backstage.commands import history
from backstage.commands import lock as lock_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed, host_locks
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.steps import Step
from backstage.util import utc_now


def whoami() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def new_lock(command: str, act: str | None = None, message: str | None = None,
             release: str | None = None, lease: float | None = None) -> dict:
    """What a lock records about its holder (the token lets only the holder free it) and, for
    a deploy, its intent: the release it rolls out (what a later deploy resumes, if the
    holder is gone; see :func:`backstage.operations.deploy.resumed_release`), and its lease:
    the seconds it lives without being renewed (``lock_timeout``; see engine/lease.py)."""
    return {"by": whoami(), "host": socket.gethostname(), "pid": os.getpid(), "time": utc_now(),
            "command": command, "act": act, "message": message, "token": secrets.token_hex(8),
            **({"release": release} if release else {}), **({"lease": lease} if lease else {})}


def lock_scope(production: Production, host: str, act_name: str | None) -> list[str]:
    """The act's lock, or (no act) the lock of every act of the production on the host."""
    acts = production.acts_on(host)
    return sorted(lock_cmd.act_lock(a) for a in acts if act_name in (None, a))


def plan_lock(host: str, layout: Layout, observed: Observed, locks: list[str], holder: dict,
              act_name: str | None) -> Step:
    """Take ``locks`` for ``holder`` by hand (refused while someone else holds one)."""
    checks.not_locked(host, observed, locks)
    script = lock_cmd.acquire(Script(), layout, locks, holder)
    history.append(script, layout, {"time": holder["time"], "event": "lock", "act": act_name,
                                    "locks": locks, "by": holder["by"],
                                    "message": holder["message"]})
    return Step("lock", "", script.text())


def plan_unlock(production: Production, host: str, layout: Layout, observed: Observed,
                act_name: str | None) -> tuple[Step | None, list[tuple[dict, list[str]]]]:
    """Clear the locks held on a host (the act's and those its holder took with it, or all);
    the step (None: nothing held) and, per holder, the locks cleared."""
    held = observed.held_locks(host_locks(production, host))
    if act_name is not None:
        held = taken_with(held, lock_cmd.act_lock(act_name))
    if not held:
        return None, []
    script = lock_cmd.force_release(Script(), layout, list(held))
    cleared = holders_of(held)
    for holder, locks in cleared:
        history.append(script, layout, {"time": utc_now(), "event": "unlock", "by": whoami(),
                                        "holder": holder, "locks": locks,
                                        "stale": checks.lock_is_stale(holder)})
    return Step("unlock", "", script.text()), cleared


def taken_with(held: dict[str, dict], lock_name: str) -> dict[str, dict]:
    """A held lock and those its holder took with it (a deploy's database locks)."""
    own = held.get(lock_name)
    token = own.get("token") if own else None
    return {name: holder for name, holder in held.items()
            if name == lock_name or (token and holder.get("token") == token)}


def holders_of(held: dict[str, dict]) -> list[tuple[dict, list[str]]]:
    """Group held locks by holder (one token each), tokens left out: they free locks."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for lock_name, holder in sorted(held.items()):
        key = holder.get("token") or lock_name
        public = {k: v for k, v in holder.items() if k != "token"}
        groups.setdefault(key, (public, []))[1].append(lock_name)
    return list(groups.values())
