"""Preconditions a plan verifies from observations before it changes anything on a host."""

import os
import socket

from backstage.errors import BackstageError, LockHeld
from backstage.facts.observed import Observed
from backstage.model import RunAs, provision
from backstage.model.provision import Provisioning
from backstage.render import LISTEN_BACKLOG


def somaxconn(host: str, observed: Observed) -> None:
    value = observed.somaxconn
    if value is not None and value < LISTEN_BACKLOG:
        raise BackstageError(
            f"{host}: net.core.somaxconn is {value}, below the vassals' listen backlog "
            f"{LISTEN_BACKLOG} (uWSGI would refuse to start): raise it with "
            f"'sysctl -w net.core.somaxconn={LISTEN_BACKLOG}'"
        )


def nginx_installed(host: str, observed: Observed) -> None:
    if not observed.nginx:
        raise BackstageError(f"{host}: nginx is not installed (e.g. 'apt-get install nginx-light')")


def provisioning(host: str, observed: Observed, builder: bool = False) -> Provisioning:
    """What setup-stage installs and writes on a host of the system layout (see
    :mod:`backstage.model.provision`; a ``builder`` gets a compiler too); a host lacking
    packages and a source to get them fails."""
    try:
        return provision.decide(host, observed.host_facts(), LISTEN_BACKLOG, builder)
    except provision.ProvisionError as exc:
        raise BackstageError(str(exc)) from None


def stage_ready(host: str, observed: Observed) -> None:
    if observed.stage_python is None or not observed.has(observed.layout.uwsgi):
        raise BackstageError(f"{host}: no stage for this production yet: run setup-stage first")
    if not observed.emperor_running:
        raise BackstageError(f"{host}: the uWSGI Emperor is not running: run setup-stage")


def gigs_served(host: str, observed: Observed, act: str, gigs: list[str]) -> None:
    """An act with nothing to deploy is not "up to date" when nginx, which serves its gigs,
    is down (a deploy with changes finds out in its check through nginx)."""
    if gigs and not observed.nginx_running:
        raise BackstageError(f"{host}: nginx is not running, so the gigs of {act} "
                             f"({', '.join(gigs)}) do not answer: run setup-stage")


def venue_matches_emperor(host: str, venue: str, venue_python: dict | None,
                          stage_python: dict) -> None:
    """The Emperor's uWSGI embeds its Python; a venue of another version cannot load."""
    if venue_python is None:
        raise BackstageError(f"{host}: venue {venue!r}: its Python interpreter is not on the host")
    if venue_python["version"].rsplit(".", 1)[0] != stage_python["version"].rsplit(".", 1)[0]:
        raise BackstageError(
            f"{host}: venue {venue!r} uses Python {venue_python['version']} "
            f"({venue_python['executable']}) but the Emperor's uWSGI embeds Python "
            f"{stage_python['version']} ({stage_python['executable']}): use the same "
            "interpreter for the venue and the host's 'python'"
        )


def not_locked(host: str, observed: Observed, locks: list[str]) -> None:
    """Refuse at once when someone holds one of these locks on this host."""
    for lock, holder in observed.held_locks(locks).items():
        raise LockHeld(host, holder, stale=lock_is_stale(holder), lock=lock)


def locks_to_take_over(host: str, observed: Observed, locks: list[str]) -> dict[str, dict]:
    """The locks a deploy may take over: held by a holder that is provably gone (see
    :func:`lock_is_stale`) and freeable (its token is known). Any other held lock refuses at
    once, naming its holder: a live process's lock, or one elsewhere, is never broken."""
    held = observed.held_locks(locks)
    gone = {lock: holder for lock, holder in held.items()
            if lock_is_stale(holder) and holder.get("token")}
    for lock, holder in held.items():
        if lock not in gone:
            raise LockHeld(host, holder, stale=lock_is_stale(holder), lock=lock)
    return gone


def lock_is_stale(holder: dict) -> bool:
    """A lock whose holder is provably gone is stale: taken from this machine by a process
    that no longer exists, or from another machine with a lease its holder did not renew for
    longer than the lease (``lock_timeout``: a deploy renews it while it runs).

    A live process's lock on this machine is never stale, whatever its lease; one taken by
    hand (the ``lock`` task) outlives its process on purpose; one from another machine without
    a lease (an older Backstage) cannot be judged from here. All are reported as held.
    """
    if holder.get("command") == "lock":
        return False
    if not on_this_machine(holder):
        return lease_expired(holder)
    if not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def on_this_machine(holder: dict) -> bool:
    return holder.get("host") == socket.gethostname()


def lease_expired(holder: dict) -> bool:
    """Whether a lock's lease ran out: not renewed (its file's age on the host) for longer
    than the lease its holder recorded."""
    lease, age = holder.get("lease"), holder.get("lease_age")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lease, age))
    return numbers and age > lease


def stale_reason(holder: dict) -> str:
    """Why a stale lock's holder is gone, for the loud line a takeover prints."""
    if on_this_machine(holder):
        return f"pid {holder.get('pid')} is gone on this machine"
    return (f"its lease was not renewed for {holder.get('lease_age')} s (lock_timeout "
            f"{holder.get('lease')} s) by {holder.get('by')} on another machine")


def privileged(host: str, observed: Observed) -> None:
    """The system layout writes /etc, /srv and runs daemons as root."""
    if observed.layout.kind == "system" and observed.uid != 0:
        raise BackstageError(
            f"{host}: the system layout needs root, but commands run as {observed.user}: "
            "connect as root, or set the host's become = \"sudo\" (see the README's sudo rules)")


def act_user(host: str, observed: Observed, user: str, nginx_group: str) -> RunAs:
    """The act's unix identity on the host, which ``setup-stage`` creates."""
    account = observed.account(user)
    if account is None:
        raise BackstageError(f"{host}: no unix user {user!r} for the act yet: run setup-stage")
    return RunAs(user, account["group"], nginx_group)
