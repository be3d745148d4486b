"""What ``status`` asks the host helper about acts, and how its answer is read."""

from backstage.facts.live import live_paths, live_state
from backstage.model import Layout


def status_spec(layout: Layout, acts: list[str]) -> dict:
    return {
        "vassals": layout.vassals,
        "acts": {a: {"stats": layout.stats_socket(a, "{release}"), **live_paths(layout, a)}
                 for a in acts},
    }


def read_status(layout: Layout, answer: dict) -> dict:
    """Per act: its sesses, its links, and ``broken``: why its live release does not serve
    (None when it does, or when it was never deployed or was stopped on purpose)."""
    found = answer["acts"]
    for act, info in found.items():
        info["broken"] = live_state(layout, act, info.pop("facts")).broken
    return found


def workers_of(status: dict, act: str, release: str) -> list[int]:
    """The worker pids of one release of an act, from :func:`read_status`."""
    return [w for s in status[act]["sesses"] if s["release"] == release for w in s["workers"]]


def read_texts(answer: dict) -> dict[str, str | None]:
    """The helper's ``read`` answer: per path, the file's text (None: no such file)."""
    return answer["texts"]
