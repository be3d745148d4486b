"""Whether what a host records as an act's live release is live, and how a deploy repairs it.

The host helper answers the facts (:func:`live` in the helper, part of every probe and of
``status``): the ``current`` link's release, whether its directory exists, its vassal file's
state, whether its own socket and the stable socket link nginx uses accept a connection.
This module turns them into the problems a person reads and the repair a deploy makes.
"""

from dataclasses import dataclass, field

from backstage.model import Layout

# A socket whose backlog is full is alive: something listens on it.
ALIVE = ("listening", "busy")


def live_paths(layout: Layout, act: str) -> dict[str, str]:
    """What the helper looks at for one act (``{release}`` stands for the live one's id)."""
    return {"current": layout.current(act), "stable": layout.stable_socket(act),
            "socket": layout.socket(act, "{release}"),
            "vassal": layout.vassal(act, "{release}")}


@dataclass
class LiveState:
    """The recorded live release of an act on a host, what is wrong with it, and the repair.

    ``repair``: ``None`` (healthy, or never deployed), ``"relink"`` (the release serves on
    its own socket but the stable link does not lead there), ``"start"`` (its vassal file is
    not enabled: write it and start it) or ``"release"`` (its directory is gone or its
    enabled vassal takes no connection: a deploy makes a new release). A vassal stopped on
    purpose (``stop``) is not a problem, but a deploy starts it: ``stopped`` says why.
    """

    release: str | None
    problems: list[str] = field(default_factory=list)
    repair: str | None = None
    stopped: str | None = None

    @property
    def broken(self) -> str | None:
        """The problems in one line, or None."""
        return "; ".join(self.problems) or None

    @property
    def reasons(self) -> list[str]:
        """Why a deploy of the same code does something: the problems, or a stop."""
        return [*([self.stopped] if self.stopped else []), *self.problems]


def live_state(layout: Layout, act: str, facts: dict | None) -> LiveState:
    """Judge the helper's facts about an act (see :func:`live_paths`)."""
    release = (facts or {}).get("release")
    if release is None:
        return LiveState(None)
    state = LiveState(release)
    vassal = facts["vassal"]
    if not facts["release_dir"]:
        state.problems.append(f"release {release} is missing ({layout.release(act, release)} "
                              "is gone)")
        state.repair = "release"
    elif vassal == "stopped":
        state.stopped = f"the vassal of release {release} was stopped (by stop)"
        state.repair = "start"
    elif vassal != "enabled":
        state.problems.append(f"the vassal of release {release} is "
                              f"{'retired' if vassal else 'missing'} "
                              f"({layout.vassal(act, release)})")
        state.repair = "start"
    elif facts["socket"] not in ALIVE:
        state.problems.append(f"the vassal of release {release} takes no connection on "
                              f"{layout.socket(act, release)} ({facts['socket']})")
        state.repair = "release"
    if facts["stable"] != layout.socket_link(act, release):
        target = facts["stable"] or "nothing"
        state.problems.append(f"the stable socket link {layout.stable_socket(act)} points to "
                              f"{target} ({facts['stable_socket']}), not to release {release}")
        state.repair = state.repair or "relink"
    return state
