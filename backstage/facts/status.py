"""What ``status`` asks the host helper about acts, and how its answer is read."""

import json

from backstage.commands.lock import act_lock
from backstage.facts.live import live_paths, live_state
from backstage.facts.observed import with_lease_age
from backstage.model import Layout, servers


def status_spec(layout: Layout, acts: list[str]) -> dict:
    return {
        "vassals": layout.vassals,
        "acts": {a: {"stats": layout.stats_socket(a, "{release}"),
                     "pidfile": servers.pidfile(layout, a, "{release}"), **live_paths(layout, a),
                     "lock": layout.lock_info(act_lock(a)),
                     "maintenance": {"page": layout.maintenance_page(a),
                                     "info": layout.maintenance_info(a)}}
                 for a in acts},
    }


def read_status(layout: Layout, answer: dict) -> dict:
    """Per act: its sesses, its links, ``broken``: why its live release does not serve
    (None when it does, or when it was never deployed or was stopped on purpose), and
    ``lock``: who holds the act's lock (None: nobody), with a deploy's intent (its release);
    ``maintenance``: None, or who switched it on, when, with what message."""
    found = answer["acts"]
    for act, info in found.items():
        info["broken"] = live_state(layout, act, info.pop("facts")).broken
        info["lock"] = with_lease_age(lock_holder(info.get("lock")), info.pop("lock_age", None))
    return found


def lock_holder(text: str | None) -> dict | None:
    """A lock's holder as ``status`` shows it: its token left out (it frees the lock)."""
    if text is None:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not isinstance(holder, dict):
        return {"by": "unknown (unreadable lock file)"}
    return {k: v for k, v in holder.items() if k != "token"}


def workers_of(status: dict, act: str, release: str) -> list[int]:
    """The worker pids of one release of an act, from :func:`read_status`."""
    return [w for s in status[act]["sesses"] if s["release"] == release for w in s["workers"]]


def read_texts(answer: dict) -> dict[str, str | None]:
    """The helper's ``read`` answer: per path, the file's text (None: no such file)."""
    return answer["texts"]
