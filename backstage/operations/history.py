"""``history``: the newest entries of the hosts' histories, read and merged."""

import json

from backstage.commands import history
from backstage.model import Layout
from backstage.operations.steps import Step


def plan_history(layout: Layout, limit: int) -> Step:
    """Read a host's last ``limit`` entries (its stdout is what :func:`entries` reads)."""
    return Step("history", "", history.read(layout, limit))


def entries(text: str) -> list[dict]:
    """The entries of a host's answer, one JSON object a line."""
    return [history_entry(line) for line in text.splitlines() if line.strip()]


def history_entry(line: str) -> dict:
    """One line of a host's history; one that is not JSON (cut short by a full disk, say) is
    shown as it is."""
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    return entry if isinstance(entry, dict) else {"event": "unreadable", "line": line}


def newest(per_host: dict[str, list[dict]], limit: int) -> list[dict]:
    """The ``limit`` newest entries across hosts, newest first, each naming its host."""
    merged = [{"host": host, **entry} for host, lines in per_host.items() for entry in lines]
    return sorted(merged, key=lambda e: e.get("time", ""), reverse=True)[:limit]
