"""Where a venue lives: this machine (``LocalTransport``) or a host of a production (SSH).

Both run the same command text from :mod:`backstage.venues.commands`. A remote host is
opened as the engine opens it (``backstage.engine.hosts.HostRun``): the inventory's
ssh_config and known_hosts, host keys refused when unknown unless ``accept_new_host_keys``.
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from posixpath import isabs, normpath

from backstage.commands.shell import Script, failed_step, step_output
from backstage.errors import BackstageError
from backstage.model import load_production, names
from backstage.model.locate import find_inventory
from backstage.transport import LocalTransport, SSHTransport, Transport
from backstage.venues.errors import VenueError

DETAIL_LINES = 40


def workstation_python() -> str:
    """The interpreter behind this Python (outside any virtualenv): the one wheels match."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(candidate) if candidate.exists() else os.path.realpath(sys.executable)


@dataclass
class Place:
    transport: Transport
    python: str  # the interpreter that makes virtualenvs on this host
    host: str | None = None
    production: str | None = None
    inventory: Path | None = None

    @property
    def label(self) -> str:
        return "local" if self.host is None else f"{self.host} ({self.production})"

    def resolve(self, path) -> str:
        """An absolute path on this host: relative paths are relative to the cwd (local only)."""
        if self.host is None:
            text = str(Path(path).expanduser().resolve())
        else:
            text = str(path)
            if not isabs(text):
                raise ValueError(f"a venue path on host {self.host!r} must be absolute: {text!r}")
            text = normpath(text)
        try:
            return names.absolute_path(text)
        except ValueError as exc:
            raise ValueError(f"{exc} (the venue's files, sockets and uWSGI options hold it)") \
                from None

    def run(self, script: Script | str, what: str, stdin: bytes | None = None,
            error: type[BackstageError] = VenueError) -> str:
        """Run a script; on failure raise ``error`` naming the step, with its last lines."""
        command = script.text() if isinstance(script, Script) else script
        result = self.transport.run(command, stdin=stdin)
        if result.ok:
            return result.stdout
        output = step_output(result.stderr).strip() or result.stdout.strip()
        detail = "\n".join(output.splitlines()[-DETAIL_LINES:])
        raise error(f"{self.label}: {failed_step(result.stderr) or what} failed:\n{detail}")

    def close(self) -> None:
        self.transport.close()


def open_place(host: str | None = None, production: str | None = None, inventory=None,
               python: str | None = None, accept_new_host_keys: bool = False) -> Place:
    if host is None:
        if production is not None or inventory is not None:
            raise ValueError("production and inventory name a host's production: pass host= too")
        return Place(LocalTransport("local"), python or workstation_python())
    if inventory is None and production is not None:
        loaded = load_production(find_inventory(production, "production"))
    else:
        loaded = load_production(find_inventory(inventory, "inventory"))
    if production is not None and loaded.name != production:
        raise ValueError(f"{loaded.path} is production {loaded.name!r}, not {production!r}")
    if host not in loaded.hosts:
        known = ", ".join(sorted(loaded.hosts))
        raise ValueError(f"unknown host {host!r} in {loaded.path} (known: {known})")
    spec = loaded.hosts[host]
    transport = SSHTransport(
        host, spec.address or host, user=spec.user, port=spec.port,
        ssh_config=loaded.ssh.config, known_hosts=loaded.ssh.known_hosts,
        accept_new_host_keys=accept_new_host_keys,
    )
    return Place(transport, python or spec.python, host, loaded.name, loaded.path)


def not_a_venue(place: Place, root: str) -> VenueError:
    return VenueError(f"{place.label}: {root} is not a venue (no venue.json); "
                      "make one with new_venue()")
