"""One sandbox host that outlives the command that started it, for the demo.

It is a fleet host (see :mod:`backstage.sandbox.fleet`) named ``stage1``, kept in
``<repo>/.backstage/sandbox/``: the fleet's ssh_config, known_hosts, client key and state file,
the host's disks under ``hosts/stage1/``, and ``storefront.env``, the example act's secrets.
``down`` then ``up`` is a reboot: the disks and host key stay, processes do not.
"""

import os
import secrets
from pathlib import Path

from backstage.sandbox.fleet import Fleet, FleetError, FleetHost

HOST = "stage1"
NETNS_PREFIX = "sandbox"
SECRETS_FILE = "storefront.env"


def sandbox_dir(repo: Path) -> Path:
    return Path(repo).resolve() / ".backstage" / "sandbox"


def attached(workdir: Path) -> Fleet | None:
    """The sandbox's fleet as its state file records it, or None if none was started."""
    try:
        return Fleet.attach(workdir)
    except FileNotFoundError:
        return None


def running_host(workdir: Path) -> FleetHost | None:
    """The sandbox host if it runs now."""
    fleet = attached(workdir)
    return fleet.host(HOST) if fleet and fleet.host(HOST).pid else None


def up(workdir: Path) -> tuple[FleetHost, bool]:
    """Start the sandbox host unless it runs; returns it and whether this call started it."""
    fleet = attached(workdir)
    if fleet and fleet.host(HOST).pid:
        return fleet.host(HOST), False
    if fleet:  # recorded but dead (killed, or the machine rebooted): clear its leftovers
        fleet.stop()
    fleet = Fleet(workdir, prefix=NETNS_PREFIX, detach=True)
    try:
        (host,) = fleet.start([HOST])
    except BaseException:
        fleet.stop()
        raise
    write_secrets(workdir / SECRETS_FILE)
    return host, True


def down(workdir: Path) -> FleetHost | None:
    """Stop the sandbox host and delete its netns; returns it, or None if it was not running."""
    fleet = attached(workdir)
    if fleet is None:
        return None
    host = fleet.host(HOST)
    was_running = bool(host.pid)
    fleet.stop()
    return host if was_running else None


def fetch(workdir: Path, path: str, host_header: str, port: int) -> tuple[int, str]:
    """GET path from the sandbox host's nginx, from inside its network namespace."""
    fleet = attached(workdir)
    if fleet is None or not fleet.host(HOST).pid:
        raise FleetError("the sandbox is not up (start it: python -m backstage.sandbox up)")
    return fleet.http(HOST, path, port=port, host_header=host_header)


def write_secrets(path: Path) -> None:
    """Create the example act's secrets file (0600) once; an existing one is kept as it is,
    so the Django secret key (sessions, signed cookies) survives re-runs of the demo."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n")
