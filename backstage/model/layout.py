"""Where everything of a production lives on a host.

Two layouts share one shape (docs/architecture.md, "What a host holds"). The *system* layout keeps the
production under ``/srv/backstage/<production>`` and its gigs in nginx's own
``sites-enabled``; the *user* layout keeps everything, nginx included, under one directory the
SSH user owns, so it needs no privileges. Paths are plain strings: they are only ever used on
the host, and always pass through :func:`shlex.quote` in :mod:`backstage.commands`.
"""

from dataclasses import dataclass
from posixpath import join

from backstage.model.inventory import Host, default_http_port

# The folder of a release that collectstatic fills; never part of an upload (bundle.py).
STATIC_DIR = ".backstage-static"
# The folder of a release that holds Backstage's settings module (model/django.py); root's.
OVERLAY_DIR = ".backstage-settings"


@dataclass(frozen=True)
class RunAs:
    """The unix identity an act runs as on a host (system layout), and nginx's group, which
    reaches its sockets and media."""

    user: str
    group: str
    nginx_group: str


@dataclass(frozen=True)
class Layout:
    production: str
    kind: str
    base: str
    http_port: int

    @classmethod
    def for_host(cls, production: str, host: Host) -> "Layout":
        if host.root:
            base = host.root
        elif host.layout == "user":
            base = f"/home/{host.user}/backstage"  # the model requires user or root here
        else:
            base = "/srv/backstage"
        return cls(production, host.layout, base, host.http_port or default_http_port(host))

    @property
    def root(self) -> str:
        return join(self.base, self.production)

    def _at(self, *parts: str) -> str:
        return join(self.root, *parts)

    # The stage: the Emperor's own virtualenv and configuration.
    @property
    def stage(self) -> str:
        return self._at("stage")

    @property
    def stage_venv(self) -> str:
        return self._at("stage", "venv")

    @property
    def uwsgi(self) -> str:
        return self._at("stage", "venv", "bin", "uwsgi")

    @property
    def emperor_ini(self) -> str:
        return self._at("stage", "emperor.ini")

    @property
    def emperor_argv(self) -> list[str]:
        """The Emperor's command line (as started by Backstage or its systemd unit): how a host
        finds the Emperor in its process table, never from a file an act could write."""
        return [self.uwsgi, "--ini", self.emperor_ini]

    @property
    def emperor_pidfile(self) -> str:
        return self._at("run", "emperor.pid")

    @property
    def emperor_stats(self) -> str:
        return self._at("run", "emperor-stats.sock")

    @property
    def emperor_unit(self) -> str:
        """The systemd unit, used in the system layout where systemd runs."""
        return f"/etc/systemd/system/{self.emperor_unit_name}"

    @property
    def emperor_unit_name(self) -> str:
        return f"backstage-{self.production}-emperor.service"

    @property
    def wheelhouse(self) -> str:
        return self._at("wheelhouse")

    @property
    def directories(self) -> list[str]:
        """Every directory the stage needs, parents first."""
        dirs = [self.root, self.stage, self.wheelhouse, self.venues, self.acts, self.trees,
                self.data, self.run, self.vassals, self.log, self.state, self.backups]
        if self.kind == "user":
            dirs += [self.nginx_dir, self.nginx_sites, self._at("nginx", "temp")]
        return dirs

    @property
    def venues(self) -> str:
        return self._at("venues")

    @property
    def acts(self) -> str:
        return self._at("acts")

    @property
    def state(self) -> str:
        return self._at("state")

    @property
    def data(self) -> str:
        return self._at("data")

    def act_data(self, act: str) -> str:
        """The act's own folder of ``data/``: its project's own sqlite files (the overlay
        moves them there), the act user's alone."""
        return join(self.data, act)

    @property
    def backups(self) -> str:
        """Database snapshots (root's alone, 0700: an act never writes what a restore reads)."""
        return self._at("backups")

    def act_backups(self, act: str) -> str:
        return join(self.backups, act)

    @property
    def run(self) -> str:
        return self._at("run")

    @property
    def vassals(self) -> str:
        return self._at("vassals")

    @property
    def log(self) -> str:
        return self._at("log")

    @property
    def history(self) -> str:
        return self._at("state", "history.jsonl")

    def lock_dir(self, lock: str) -> str:
        """A lock (``act/<act>``, ``database/<name>``: see :mod:`backstage.commands.lock`):
        ``mkdir`` takes it atomically; ``info.json`` inside names the holder."""
        return self._at("state", "locks", lock)

    def lock_info(self, lock: str) -> str:
        return join(self.lock_dir(lock), "info.json")

    def retire_lock(self, act: str) -> str:
        """The file an act's pending retire holds with ``flock`` until it is done (a revive
        waits for it)."""
        return self._at("state", "locks", "retire", act)

    def venue_lock(self, venue: str) -> str:
        """The file a venue's build holds with ``flock`` (acts sharing a venue wait for it)."""
        return self._at("state", "locks", "venue", venue)

    # Venues.
    def venue_dir(self, venue: str, digest: str) -> str:
        return self._at("venues", f"{venue}-{digest}")

    def venue_link(self, venue: str) -> str:
        return self._at("venues", venue)

    # Source trees: one per content digest, shared by the acts deployed from it. A release is
    # a hard-link copy of its tree; a tree is only ever written while it is being made.
    @property
    def trees(self) -> str:
        return self._at("trees")

    def tree(self, digest: str) -> str:
        return self._at("trees", digest)

    # Acts and their releases.
    def act_dir(self, act: str) -> str:
        return self._at("acts", act)

    def releases(self, act: str) -> str:
        return self._at("acts", act, "releases")

    def release(self, act: str, release_id: str) -> str:
        return self._at("acts", act, "releases", release_id)

    def in_release(self, act: str, release_id: str, relative: str) -> str:
        """A path inside a release, relative to its root (``.``: the release itself)."""
        release = self.release(act, release_id)
        return release if relative == "." else join(release, relative)

    def current(self, act: str) -> str:
        return self._at("acts", act, "current")

    def shared(self, act: str) -> str:
        return self._at("acts", act, "shared")

    def env_dir(self, act: str) -> str:
        """Root's folder of the act's env files: apart from ``shared/``, which the act may
        write, so root never writes an env file through a link the act planted."""
        return self._at("acts", act, "env")

    def env_file(self, act: str, release: str) -> str:
        """A release's environment and secrets (0600). Per release, so a release that fails
        never changes what the live one reads, and a rollback gets its own back."""
        return join(self.env_dir(act), f"env-{release}")

    def media(self, act: str) -> str:
        return self._at("acts", act, "media")

    def static(self, act: str, release_id: str) -> str:
        """Where ``collectstatic`` writes: a folder of the release no repository has (a
        top-level ``static/`` is often a source folder of ``STATICFILES_DIRS``)."""
        return join(self.release(act, release_id), STATIC_DIR)

    def overlay_dir(self, act: str, release_id: str) -> str:
        """The folder of Backstage's settings module in a release (on the import path)."""
        return join(self.release(act, release_id), OVERLAY_DIR)

    def current_static(self, act: str) -> str:
        return join(self.current(act), STATIC_DIR)

    def good_list(self, act: str) -> str:
        """Releases that took traffic once, one id a line; rollback picks among them."""
        return self._at("acts", act, "good-releases")

    def bad_list(self, act: str) -> str:
        """Releases that failed before their switch; never rolled back to."""
        return self._at("acts", act, "bad-releases")

    def act_log(self, act: str) -> str:
        return self._at("log", f"{act}.log")

    def gig_access_log(self, gig: str) -> str:
        return self._at("log", f"nginx-{gig}.access.log")

    @property
    def emperor_log(self) -> str:
        """Where a daemonized Emperor logs (under systemd, it logs to the journal)."""
        return self._at("log", "emperor.log")

    @property
    def nginx_error_log(self) -> str:
        """The user layout's nginx logs in the stage; the system's nginx, in its own folder."""
        return self._at("log", "nginx-error.log") if self.kind == "user" \
            else "/var/log/nginx/error.log"

    # Sesses: one vassal and one socket per release; nginx points at the stable socket.
    def vassal(self, act: str, release_id: str) -> str:
        return self._at("vassals", f"{act}@{release_id}.ini")

    def socket_dir(self, act: str) -> str:
        """Where an act's vassals make their sockets. In the system layout each act has its
        own, root's with nginx's group: uWSGI binds and chowns the socket there as root, so
        the act must not be able to plant a link in it (nothing there is the act's to move)."""
        return self._at("run", act) if self.kind == "system" else self.run

    def stats_dir(self, act: str) -> str:
        """Where an act's vassals make their stats sockets: uWSGI binds them after dropping
        to the act's user, so in the system layout this folder is the act's. Root only ever
        connects there, never following a link (see the host helper)."""
        return self._at("run", f"{act}.stats") if self.kind == "system" else self.run

    def _socket_name(self, act: str, release_id: str) -> str:
        """``<release>`` in an act's own folder, ``<act>@<release>`` in the shared ``run/``
        (the act is not named twice: uWSGI limits socket paths to 102 bytes)."""
        return release_id if self.kind == "system" else f"{act}@{release_id}"

    def socket(self, act: str, release_id: str) -> str:
        return join(self.socket_dir(act), self._socket_name(act, release_id) + ".sock")

    def socket_link(self, act: str, release_id: str) -> str:
        """What the stable socket link holds: the release's socket, relative to ``run/``."""
        return self.socket(act, release_id)[len(self.run) + 1:]

    def stable_socket(self, act: str) -> str:
        return self._at("run", f"{act}.sock")

    def stats_socket(self, act: str, release_id: str) -> str:
        if self.kind == "system":
            return join(self.stats_dir(act), release_id)
        return join(self.run, f"{act}@{release_id}.stats")

    # nginx.
    @property
    def nginx_dir(self) -> str:
        return self._at("nginx") if self.kind == "user" else "/etc/nginx"

    @property
    def nginx_conf(self) -> str:
        return join(self.nginx_dir, "nginx.conf")

    @property
    def nginx_sites(self) -> str:
        return self._at("nginx", "sites") if self.kind == "user" else "/etc/nginx/sites-enabled"

    @property
    def nginx_pidfile(self) -> str:
        return self._at("run", "nginx.pid") if self.kind == "user" else "/run/nginx.pid"

    @property
    def default_server_conf(self) -> str:
        """The server that answers requests for no gig's domain: first of the sites (so the
        first server of each port, nginx's default for it)."""
        return join(self.nginx_sites, f"00-backstage-{self.production}-default.conf")

    @property
    def distribution_default_site(self) -> str | None:
        """Debian's "Welcome to nginx!" site, which ``setup-stage`` disables (system layout)."""
        return "/etc/nginx/sites-enabled/default" if self.kind == "system" else None

    def gig_conf(self, gig: str) -> str:
        return join(self.nginx_sites, f"backstage-{self.production}-{gig}.conf")

    # Maintenance: root's folder (0755), so no act can switch its own gigs on or off.
    @property
    def maintenance_dir(self) -> str:
        return self._at("maintenance")

    def maintenance_page(self, act: str) -> str:
        """The page an act's gigs serve with 503 while it exists: the switch itself (nginx
        tests for it on each request, so creating or removing it needs no reload)."""
        return join(self.maintenance_dir, f"{act}.html")

    def maintenance_info(self, act: str) -> str:
        """Who switched the act's maintenance on, when, with what message (JSON)."""
        return join(self.maintenance_dir, f"{act}.json")

    def tls_dir(self, gig: str) -> str:
        """A ``tls = "acme"`` gig's certificate and key (the folder 0700, the key 0600)."""
        return self._at("tls", gig)

    def tls_certificate(self, gig: str) -> str:
        return join(self.tls_dir(gig), "fullchain.pem")

    @property
    def acme_challenges(self) -> str:
        """HTTP-01 answers while an order waits (root's; nginx serves them on port 80 at
        ``/.well-known/acme-challenge/``)."""
        return self._at("acme-challenge")

    def tls_key(self, gig: str) -> str:
        return join(self.tls_dir(gig), "privkey.pem")


def release_of_link(target: str) -> str:
    """The release a link names: ``releases/<id>``, ``<act>/<id>.sock``, ``<act>@<id>.sock``."""
    name = target.rsplit("/", 1)[-1].removesuffix(".sock")
    return name.split("@", 1)[1] if "@" in name else name
