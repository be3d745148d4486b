"""Where everything of a venue lives, on whichever host it is.

A venue is one folder owning a virtualenv, its acts' code and a uWSGI Emperor of its own::

    <venue>/
      venue.json                what the venue was built from (written last: a complete venue)
      ports.json                act name -> its HTTP port on 127.0.0.1 (see backstage.venues.ports)
      emperor.ini               the venue's Emperor: watches vassals/, daemon with a pidfile
      venv/                     the virtualenv, uWSGI included (the Emperor's binary is here)
      wheelhouse/               wheels built on the workstation, installed with --no-index
      acts/<Act>/               each act's code: a Django project (manage.py, <package>/)
      vassals/<slug>.ini        what the Emperor runs (<slug>.ini.stopped: stopped)
      run/                      emperor.pid, <slug>.sock, <slug>.stats, <slug>.pid
      log/                      emperor.log, <slug>.log
      data/                     sqlite files of the acts' logical databases
      static/<slug>/  media/<slug>/   collected static files and uploads, served by uWSGI
      secrets/<slug>.env        the act's secrets (DJANGO_SECRET_KEY), 0600

Paths are plain POSIX strings, used only on the venue's host and always quoted by
:mod:`backstage.commands`.
"""

from dataclasses import dataclass
from posixpath import join

from backstage.venues.names import slug

# uWSGI refuses unix socket paths longer than this (see backstage.model.inventory).
MAX_SOCKET_PATH = 102


@dataclass(frozen=True)
class VenuePaths:
    root: str

    def _at(self, *parts: str) -> str:
        return join(self.root, *parts)

    @property
    def record(self) -> str:
        return self._at("venue.json")

    @property
    def marker(self) -> str:
        """Written first when a venue is made, so a build that failed half-way is resumed."""
        return self._at(".backstage-venue")

    @property
    def ports(self) -> str:
        return self._at("ports.json")

    @property
    def ports_lock(self) -> str:
        return self._at("run", "ports.lock")

    @property
    def emperor_ini(self) -> str:
        return self._at("emperor.ini")

    @property
    def emperor_pidfile(self) -> str:
        return self._at("run", "emperor.pid")

    @property
    def emperor_log(self) -> str:
        return self._at("log", "emperor.log")

    @property
    def venv(self) -> str:
        return self._at("venv")

    @property
    def python(self) -> str:
        return self._at("venv", "bin", "python")

    @property
    def uwsgi(self) -> str:
        return self._at("venv", "bin", "uwsgi")

    @property
    def wheelhouse(self) -> str:
        return self._at("wheelhouse")

    @property
    def acts(self) -> str:
        return self._at("acts")

    @property
    def vassals(self) -> str:
        return self._at("vassals")

    @property
    def run(self) -> str:
        return self._at("run")

    @property
    def log(self) -> str:
        return self._at("log")

    @property
    def data(self) -> str:
        return self._at("data")

    @property
    def secrets(self) -> str:
        return self._at("secrets")

    @property
    def directories(self) -> list[str]:
        return [self.root, self.wheelhouse, self.acts, self.vassals, self.run, self.log,
                self.data, self._at("static"), self._at("media")]

    # One act of the venue: its code keeps the name's case, identifiers use the slug.
    def act_dir(self, act: str) -> str:
        return self._at("acts", act)

    def vassal(self, act: str) -> str:
        return self._at("vassals", f"{slug(act)}.ini")

    def socket(self, act: str) -> str:
        return self._at("run", f"{slug(act)}.sock")

    def stats(self, act: str) -> str:
        return self._at("run", f"{slug(act)}.stats")

    def pidfile(self, act: str) -> str:
        return self._at("run", f"{slug(act)}.pid")

    def act_log(self, act: str) -> str:
        return self._at("log", f"{slug(act)}.log")

    def env_file(self, act: str) -> str:
        return self._at("secrets", f"{slug(act)}.env")

    def static(self, act: str) -> str:
        return self._at("static", slug(act))

    def media(self, act: str) -> str:
        return self._at("media", slug(act))

    def longest_socket(self, act: str) -> str:
        return max(self.socket(act), self.stats(act), key=len)


def check_socket_paths(paths: VenuePaths, act: str) -> None:
    """ValueError when an act's unix sockets would be too long for uWSGI."""
    longest = paths.longest_socket(act)
    if len(longest.encode()) > MAX_SOCKET_PATH:
        raise ValueError(
            f"the sockets of act {act!r} would be {len(longest.encode())} bytes long ({longest}), "
            f"over uWSGI's limit of {MAX_SOCKET_PATH}: use a shorter venue path or act name"
        )
