"""The observed state of a host: what one probe command answered."""

import json
from dataclasses import dataclass

from backstage.commands.lock import act_lock, database_lock
from backstage.commands.privileges import stage_modes
from backstage.commands.stage import Services
from backstage.commands.venue import COMPLETE_MARKER
from backstage.facts.live import LiveState, live_paths, live_state
from backstage.model import Layout, Production, release_of_link
from backstage.model.provision import SYSCTL_FILE, HostFacts


def probe_spec(production: Production, host: str, layout: Layout) -> dict:
    """Which files, links, listings and pidfiles to look at for this host's acts and gigs.

    Which venues are built is read from the venues folder: a venue's digest depends on the
    host's platform, known from this very probe (see ``backstage.engine.builders``).
    """
    acts = production.acts_on(host)
    gigs = [g for a in acts for g in production.gigs_of(a)]
    venues = {production.acts[a].venue for a in acts}
    locks = host_locks(production, host)
    system = layout.kind == "system"
    spec = {
        "users": [production.act_user(a) for a in acts] if system else [],
        "owners": list(stage_modes(layout, production.group)) if system else [],
        "files": [layout.emperor_ini, layout.emperor_unit, layout.nginx_conf, layout.uwsgi,
                  layout.default_server_conf,
                  *(layout.gig_conf(g) for g in gigs),
                  *(f for g in gigs if production.gigs[g].tls == "acme"
                    for f in (layout.tls_certificate(g), layout.tls_key(g)))],
        "links": [*(layout.current(a) for a in acts), *(layout.stable_socket(a) for a in acts),
                  *filter(None, [layout.distribution_default_site]),
                  *(layout.venue_link(v) for v in venues)],
        "listings": [layout.wheelhouse, layout.vassals, f"{layout.root}/venues", layout.trees,
                     *(layout.releases(a) for a in acts)],
        "pidfiles": [layout.nginx_pidfile],
        "processes": {"emperor": layout.emperor_argv[1:]},
        "pythons": [f"{layout.stage_venv}/bin/python"],
        "exists": [*layout.directories, *(layout.lock_dir(k) for k in locks)],
        "globs": [f"{layout.vassals}/*.ini", *(f"{layout.env_dir(a)}/env-*" for a in acts)],
        "texts": [*(layout.lock_info(k) for k in locks), *(layout.good_list(a) for a in acts),
                  *(layout.bad_list(a) for a in acts)],
        "ages": [layout.lock_info(k) for k in locks],  # leases (operations/checks.py)
        "live": {a: live_paths(layout, a) for a in acts},
        "venues": {"dir": f"{layout.root}/venues", "vassals": layout.vassals,
                   "marker": COMPLETE_MARKER},
        "sysctl_file": SYSCTL_FILE if system else "",
    }
    return spec


def with_lease_age(holder, age: float | None):
    """A lock's holder with ``lease_age``: seconds since it last renewed its lease (the lock
    file's age, by the host's clock), which decides whether a holder elsewhere is gone."""
    if isinstance(holder, dict) and age is not None:
        return {**holder, "lease_age": age}
    return holder


def host_locks(production: Production, host: str) -> list[str]:
    """The locks of a host's acts and of the databases they use."""
    acts = production.acts_on(host)
    databases = sorted({d for a in acts for d in production.acts[a].logical_databases})
    return [*(act_lock(a) for a in acts), *(database_lock(d) for d in databases)]


@dataclass
class Observed:
    """A host's answer to the probe, with questions a planner asks of it."""

    layout: Layout
    data: dict

    @property
    def python(self) -> dict:
        return self.data["python"]

    @property
    def systemd(self) -> bool:
        return self.data["systemd"]

    @property
    def platform(self) -> dict | None:
        """The host's interpreter, architecture, libc and compiler, as
        :meth:`~backstage.artefacts.platforms.Platform.from_probe` reads them."""
        return self.data.get("platform")

    def learn_files(self, answer: dict) -> None:
        """Add the digests of a second look (the helper's ``probe`` of more ``files``)."""
        self.data["files"].update(answer["files"])

    @property
    def uid(self) -> int:
        """Whom commands run as on the host (after ``become``): its uid and name."""
        return self.data["uid"]

    @property
    def user(self) -> str:
        return self.data["user"]

    @property
    def somaxconn(self) -> int | None:
        return self.data["somaxconn"]

    @property
    def nginx(self) -> str | None:
        """The nginx program the host has (None: not installed)."""
        return self.data["nginx"]

    @property
    def services(self) -> Services:
        return Services(nginx=self.nginx or "nginx", systemd=self.systemd)

    def host_facts(self) -> HostFacts:
        """What the host has of the packages and settings a stage needs."""
        found = self.data["provision"]
        return HostFacts(nginx=bool(self.nginx), somaxconn=self.somaxconn,
                         systemd=self.systemd, **found)

    def digest(self, path: str) -> str | None:
        return self.data["files"].get(path)

    def has(self, path: str) -> bool:
        return self.digest(path) is not None

    def link(self, path: str) -> str | None:
        return self.data["links"].get(path)

    def listing(self, path: str) -> list[str]:
        return self.data["listings"].get(path) or []

    def pid(self, pidfile: str) -> int | None:
        return self.data["pids"].get(pidfile)

    def exists(self, path: str) -> bool:
        return self.data["exists"].get(path, False)

    def vassal_digest(self, act: str, release: str) -> str | None:
        return self.data["globs"][f"{self.layout.vassals}/*.ini"].get(self.layout.vassal(act, release))

    def env_files(self, act: str) -> list[str]:
        """Paths of the act's env files on the host (temporary copies included)."""
        return sorted(self.data["globs"].get(f"{self.layout.env_dir(act)}/env-*", {}))

    @property
    def venue_folders(self) -> dict[str, dict]:
        """Venue folder name -> ``complete``, ``completed`` (time), ``linked``, ``used_by``
        (vassal file names that name it)."""
        return self.data.get("venues", {})

    def env_digest(self, act: str, release: str) -> str | None:
        found = self.data["globs"].get(f"{self.layout.env_dir(act)}/env-*", {})
        return found.get(self.layout.env_file(act, release))

    @property
    def emperor_running(self) -> bool:
        """Found in the host's process table by its command line and owner (see the host
        helper's ``processes``), never by a pidfile."""
        return bool(self.data.get("processes", {}).get("emperor"))

    @property
    def nginx_running(self) -> bool:
        return self.pid(self.layout.nginx_pidfile) is not None

    @property
    def stage_python(self) -> dict | None:
        return self.data["pythons"].get(f"{self.layout.stage_venv}/bin/python")

    @property
    def wheels(self) -> set[str]:
        return {n for n in self.listing(self.layout.wheelhouse) if n.endswith(".whl")}

    @property
    def trees(self) -> set[str]:
        """Digests of the source trees on the host (releases are hard-link copies of them)."""
        return {n for n in self.listing(self.layout.trees) if not n.startswith(".")}

    def venue_built(self, venue: str, digest: str) -> bool:
        return self.venue_folders.get(f"{venue}-{digest}", {}).get("complete", False)

    def release_of_link(self, path: str) -> str | None:
        target = self.link(path)
        return None if target is None else release_of_link(target)

    def current_release(self, act: str) -> str | None:
        return self.release_of_link(self.layout.current(act))

    def live(self, act: str) -> LiveState:
        """Whether the act's recorded live release is there and serving (see plan.live)."""
        return live_state(self.layout, act, self.data.get("live", {}).get(act))

    def vassal_releases(self, act: str) -> list[str]:
        """Releases of an act with a vassal file, enabled or stopped."""
        prefix = f"{act}@"
        found = []
        for name in self.listing(self.layout.vassals):
            if name.startswith(prefix) and name.endswith((".ini", ".ini.stopped")):
                found.append(name[len(prefix):].split(".ini")[0])
        return sorted(set(found))

    def vassal_enabled(self, act: str, release: str) -> bool:
        return f"{act}@{release}.ini" in self.listing(self.layout.vassals)

    def text(self, path: str) -> str | None:
        return self.data["texts"].get(path)

    def account(self, user: str) -> dict | None:
        """A unix user's ``uid``, primary ``group`` and other ``groups``; None if missing."""
        return self.data["accounts"].get(user)

    def owner(self, path: str) -> str | None:
        """``user:group:mode`` (octal) of a path; None if missing."""
        return self.data["owners"].get(path)

    def _ids(self, path: str) -> list[str]:
        return [line.strip() for line in (self.text(path) or "").splitlines() if line.strip()]

    def good_releases(self, act: str) -> list[str]:
        return self._ids(self.layout.good_list(act))

    def bad_releases(self, act: str) -> set[str]:
        return set(self._ids(self.layout.bad_list(act)))

    def releases(self, act: str) -> list[str]:
        """Release ids on the host, oldest first (ids start with their UTC time)."""
        return [n for n in self.listing(self.layout.releases(act)) if not n.startswith(".")]

    def retired(self, act: str) -> set[str]:
        """Releases whose vassal file was kept, disabled, for a rollback."""
        prefix, suffix = f"{act}@", ".ini.retired"
        return {n[len(prefix):-len(suffix)] for n in self.listing(self.layout.vassals)
                if n.startswith(prefix) and n.endswith(suffix)}

    def lock_holder(self, lock: str) -> dict | None:
        """The holder of a lock on this host (see :func:`host_locks`), if anyone holds it."""
        text = self.text(self.layout.lock_info(lock))
        if text is None:
            return {"by": "unknown (no info.json)"} if self.exists(self.layout.lock_dir(lock)) \
                else None
        try:
            holder = json.loads(text)
        except ValueError:
            return {"by": "unknown (unreadable lock file)"}
        return with_lease_age(holder, self.data.get("ages", {}).get(self.layout.lock_info(lock)))

    def held_locks(self, locks: list[str]) -> dict[str, dict]:
        """Lock -> holder, for those of ``locks`` someone holds."""
        return {lock: holder for lock in locks
                if (holder := self.lock_holder(lock)) is not None}
