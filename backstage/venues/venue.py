"""Venues: a folder with a virtualenv and an Emperor of its own, on this machine or on a host.

``new_venue`` makes one (or opens it, when it exists); ``Venue(path)`` and ``venue_from_cwd()``
open one. A venue's state lives in its folder (``venue.json``, ``ports.json``, the vassal files),
so any Python process, now or after a reboot, sees the same venue. See
:mod:`backstage.venues.paths` for the folder's layout.
"""

import json
from pathlib import Path
from posixpath import join

from backstage import __version__
from backstage.artefacts import requirements as requirements_of
from backstage.artefacts import wheelhouse
from backstage.commands.shell import Script
from backstage.commands.stage import UWSGI_REQUIREMENT
from backstage.util import utc_now
from backstage.venues import commands
from backstage.venues.act import Act, new_act
from backstage.venues.errors import ActFailed, VenueError
from backstage.venues.names import api_name
from backstage.venues.paths import VenuePaths, check_socket_paths
from backstage.venues.place import Place, not_a_venue, open_place
from backstage.venues.render import emperor_ini
from backstage.venues.scaffold import DJANGO_REQUIREMENT


class Venue:
    """An existing venue. ``Venue('/srv/venues/MyVenue', host='web1', production='staging')``
    opens one on a host of a production; without ``host`` the path is on this machine."""

    def __init__(self, path, *, host: str | None = None, production: str | None = None,
                 inventory=None, accept_new_host_keys: bool = False,
                 _place: Place | None = None):
        self.place = _place or open_place(host, production, inventory,
                                          accept_new_host_keys=accept_new_host_keys)
        try:
            self.paths = VenuePaths(self.place.resolve(path))
            state = self.describe()
            if not state["record"]:
                raise not_a_venue(self.place, self.paths.root)
        except BaseException:
            self.place.close()
            raise
        self.record = state["record"]
        self.name = self.record["name"]
        self._ports: dict[str, int] = state["ports"]

    # --- state ----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.paths.root

    @property
    def host(self) -> str | None:
        return self.place.host

    @property
    def production(self) -> str | None:
        return self.place.production

    def describe(self) -> dict:
        """The venue's state on its host, in one round trip."""
        return json.loads(self.place.run(commands.describe(self.paths, self.place.python),
                                         "describe"))

    def refresh(self) -> "Venue":
        self._ports = self.describe()["ports"]
        return self

    @property
    def acts(self) -> dict[str, Act]:
        """The venue's acts by name (each has its recorded port)."""
        return {name: Act(self, name, port) for name, port in sorted(self._ports.items())}

    @property
    def emperor_pid(self) -> int | None:
        """The pid of the venue's Emperor, or None when it does not run."""
        return self.describe()["emperor"]

    # --- acts -----------------------------------------------------------------------------

    def new_act(self, name: str, **options) -> Act:
        return new_act(self, name, **options)

    def _ports_of(self, acts) -> dict[str, int]:
        return {act.name: act.get_uwsgi_port() for act in acts}

    def start_all(self, timeout: float = 60) -> None:
        """Start every act (and the Emperor, after a reboot, say); wait until each answers."""
        self.refresh()
        if self._ports:
            script = commands.start_acts(Script(), self.paths, dict(self._ports), timeout)
            self.place.run(script, "start", error=ActFailed)

    def stop_all(self, timeout: float = 90) -> None:
        """Stop every act and wait until none of their processes is left."""
        self.refresh()
        if self._ports:
            script = commands.stop_acts(Script(), self.paths, dict(self._ports), timeout)
            self.place.run(script, "stop", error=ActFailed)

    def restart_all(self, timeout: float = 60) -> None:
        """Reload every running act gracefully (new workers) and start the stopped ones."""
        self.refresh()
        if self._ports:
            script = commands.restart_acts(Script(), self.paths, dict(self._ports), timeout)
            self.place.run(script, "restart", error=ActFailed)

    def shutdown(self) -> None:
        """Stop the venue's Emperor, and so every act, leaving each act's vassal enabled or
        not: the next ``start``/``start_all`` starts the Emperor again with the same acts."""
        self.place.run(commands.stop_emperor(Script(), self.paths), "emperor")

    def close(self) -> None:
        """Close the connection to the venue's host (nothing to do on this machine)."""
        self.place.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        where = "" if self.host is None else f" on {self.place.label}"
        return f"<Venue {self.name!r} at {self.path}{where}>"


def venue_wheels(requirements: Path | None) -> tuple[list[Path], str]:
    """Build (once, cached) the wheels of a venue on this workstation: uWSGI, Django (unless the
    requirements, or a file they include, name it) and the requirements; return them and the
    digest of what was resolved (see :mod:`backstage.artefacts.requirements`)."""
    uwsgi = wheelhouse.for_uwsgi(UWSGI_REQUIREMENT)
    named = requirements_of.read(requirements).names if requirements is not None else set()
    extra = () if "django" in named else (DJANGO_REQUIREMENT,)
    resolved = requirements_of.resolve(requirements, extra)
    return uwsgi + list(resolved.wheels), resolved.digest("")


def new_venue(name: str, root=".", requirements=None, *, python: str | None = None,
              host: str | None = None, production: str | None = None, inventory=None,
              accept_new_host_keys: bool = False) -> Venue:
    """Make the venue ``<root>/<name>``: its folder, its virtualenv (uWSGI, Django and the
    optional requirements file, installed offline from wheels built here), its Emperor's ini.

    An existing venue is opened instead, never rebuilt; given requirements it lacks are
    installed into it. ``host`` (with ``production`` or ``inventory``) makes the venue on a host
    of a production. Names are checked before anything is made (``ValueError``).
    """
    api_name(name, "venue name")
    requirements = Path(requirements).expanduser().resolve() if requirements else None
    if requirements is not None and not requirements.is_file():
        raise ValueError(f"no such requirements file: {requirements}")
    place = open_place(host, production, inventory, python, accept_new_host_keys)
    try:
        paths = VenuePaths(join(place.resolve(root), name))
        check_socket_paths(paths, "a")
        state = json.loads(place.run(commands.describe(paths, place.python), "describe"))
        record = state["record"]
        if record and record.get("name") != name:
            raise ValueError(f"{paths.root} is the venue {record.get('name')!r}, not {name!r}")
        if not record and state["entries"] and ".backstage-venue" not in state["entries"]:
            raise VenueError(f"{place.label}: {paths.root} exists and is not a venue; "
                             "refusing to build one over it")
        wheels, digest = (venue_wheels(requirements) if not record or requirements
                          else ([], record["requirements"]))
        if not record or digest != record["requirements"]:
            record = {
                "name": name,
                "python": place.python,
                "requirements": digest,
                "requirements_file": str(requirements) if requirements else None,
                "wheels": sorted(w.name for w in wheels),
                "created": (record or {}).get("created", utc_now()),
                "updated": utc_now(),
                "backstage": __version__,
            }
            script = commands.build_venue(
                Script(), paths, place.python, [w.name for w in wheels],
                wheelhouse.workstation_tag(), emperor_ini(paths, name), record,
                fresh=not state["record"],
            )
            payload = wheelhouse.pack(wheels, skip=set(state["wheels"]))
            place.run(script, "venue", stdin=payload)
        return Venue(paths.root, _place=place)
    except BaseException:
        place.close()
        raise


def venue_from_cwd(cwd=None) -> Venue:
    """The local venue holding the working directory (or ``cwd``), looking upwards."""
    start = Path(cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "venue.json").is_file() and (folder / "emperor.ini").is_file():
            return Venue(folder)
    raise VenueError(f"no venue at or above {start}")
