"""Load and validate a production's inventory file (TOML) into plain objects.

Shape checks (types, unknown keys, names, ranges) are pydantic's; checks across sections
(references, duplicate domains, port clashes, files that must exist) follow in
:func:`check_production`. Every failure becomes one :class:`InventoryError` naming the file, the
dotted key and the reason, and is raised before anything connects to a host.
"""

import hashlib
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)

from backstage.errors import InventoryError, did_you_mean, known_hint
from backstage.model import names
from backstage.model.envfile import read_env_file, read_secrets
from backstage.model.secrets import Redactor, Secret

Name = Annotated[str, AfterValidator(names.name)]
Domain = Annotated[str, AfterValidator(names.domain)]
Int = Annotated[int, Strict()]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
EnvKey = Annotated[str, AfterValidator(names.env_key)]
EnvValue = Annotated[str, AfterValidator(names.env_value)]
Interpreter = Annotated[str, AfterValidator(names.interpreter)]
RemotePath = Annotated[str, AfterValidator(names.absolute_path)]
UrlPrefix = Annotated[str, AfterValidator(names.url_prefix)]
UnixUser = Annotated[str, AfterValidator(names.unix_user)]


class Section(BaseModel):
    """Base of every inventory table: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Ssh(Section):
    """How to reach the hosts: an ssh_config file and a known_hosts file, both optional."""

    config: Path | None = None
    known_hosts: Path | None = None


class Host(Section):
    """An SSH target and the stage Backstage keeps on it."""

    address: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]+$")
    user: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    port: Port | None = None
    roles: tuple[Name, ...] = ()
    layout: Literal["system", "user"] = "system"
    root: RemotePath | None = None
    python: Interpreter = "python3"
    http_port: Port | None = None
    nginx_group: str = Field("www-data", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    # "sudo": connect as an unprivileged user and run each remote command through `sudo -n`.
    become: Literal["sudo"] | None = None


class Venue(Section):
    """A virtualenv: an interpreter and a requirements file (relative to the inventory)."""

    python: Interpreter | None = None
    requirements: Path


class Health(Section):
    """How a new release is checked through its own socket before it gets traffic."""

    path: str = Field("/", pattern=r"^/[A-Za-z0-9_./?=&%-]*$")
    host: Domain | None = None
    status: Int = Field(200, ge=100, le=599)
    timeout: float = Field(5.0, gt=0, le=300)
    retries: Int = Field(20, ge=1, le=600)


class Smoke(Section):
    """One request a new release must answer as expected, through its own socket before it
    takes traffic and through nginx after (the Host header is the act's first domain).

    Only methods that change nothing: a smoke request reaches the production's data.
    """

    path: Annotated[str, AfterValidator(names.url_path)]
    status: Int = Field(200, ge=100, le=599)
    contains: str | None = Field(None, min_length=1, max_length=200)
    method: Literal["GET", "HEAD"] = "GET"

    @model_validator(mode="after")
    def _body_for_contains(self):
        if self.contains is not None and self.method == "HEAD":
            raise ValueError("'contains' needs a body: use method = \"GET\"")
        return self


RelativeDir = Annotated[str, AfterValidator(names.relative_dir)]


class Act(Section):
    """A Django application and how it runs.

    ``source`` is the folder uploaded as the release: a whole repository, for a service in a
    monorepo. Inside it, ``source_root`` is the service's folder, first on the import path,
    where ``manage`` is found; ``pythonpath`` adds folders of the repository after it (shared
    apps, say). ``settings`` and ``wsgi`` are modules on that path.
    """

    venue: Name
    source: Path
    source_root: RelativeDir = "."
    pythonpath: tuple[RelativeDir, ...] = ()
    settings: Annotated[str, AfterValidator(names.dotted)]
    wsgi: Annotated[str, AfterValidator(names.wsgi_callable)] | None = None
    manage: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$"),
                      AfterValidator(names.relative_file)] = "manage.py"
    processes: Int = Field(2, ge=1, le=256)
    threads: Int = Field(1, ge=1, le=256)
    env: dict[EnvKey, EnvValue] = {}
    secrets: Path | None = None
    http_port: Port | None = None
    roles: tuple[Name, ...] = ()
    databases: tuple[Name, ...] = ()
    health: Health = Health()
    smoke: Annotated[tuple[Smoke, ...], BeforeValidator(names.list_of_tables)] = \
        Field((), max_length=50)
    keep_releases: Int = Field(5, ge=2, le=100)
    user: UnixUser | None = None  # system layout: the unix user it runs as (default: derived)
    # Past this size each deploy rotates the act's log into one backup (<log>.1).
    log_max_size: Annotated[str, AfterValidator(names.log_size)] = "50m"

    @property
    def import_path(self) -> tuple[str, ...]:
        """Folders of the release on the act's import path, relative to the release."""
        return tuple(dict.fromkeys([self.source_root, *self.pythonpath]))

    @property
    def log_max_bytes(self) -> int:
        return names.size_bytes(self.log_max_size)

    @property
    def manage_path(self) -> str:
        """manage.py, relative to the release (the repository's root)."""
        return self.manage if self.source_root == "." else f"{self.source_root}/{self.manage}"

    @property
    def wsgi_callable(self) -> str:
        """The WSGI callable, by default ``application`` in the settings' sibling ``wsgi``."""
        package = self.settings.rpartition(".")[0]
        return self.wsgi or f"{package + '.' if package else ''}wsgi:application"


class Database(Section):
    """A logical database's physical home in this production.

    ``sqlite``: a file in each host's data directory, so each host migrates its own during its
    prepare phase. ``postgresql``: one server shared by the hosts, migrated once per deploy,
    on one host, before any switch. Its password comes from the acts' secrets file, under
    the key ``password_secret`` names; never from the inventory.
    """

    engine: Literal["sqlite", "postgresql"] = "sqlite"
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    host: str | None = Field(None, pattern=r"^(/[A-Za-z0-9_./-]*|[A-Za-z0-9_.-]+)$")
    port: Port | None = None
    user: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    password_secret: Annotated[str, AfterValidator(names.env_key)] | None = None
    migrate_with: Name | None = None

    @property
    def shared(self) -> bool:
        """Whether all hosts use the same physical database (so it is migrated once)."""
        return self.engine != "sqlite"

    def file_name(self, logical: str) -> str:
        """The sqlite file's name in the production's data directory."""
        return self.name or f"{logical}.sqlite3"

    def sqlite_path(self, logical: str, data_dir: str) -> str:
        return f"{data_dir}/{self.file_name(logical)}"

    def django(self, logical: str, data_dir: str, secrets: dict[str, Secret]) -> dict:
        """The Django ``DATABASES`` entry an act receives in ``BACKSTAGE_DATABASES``."""
        if self.engine == "sqlite":
            return {"ENGINE": "django.db.backends.sqlite3",
                    "NAME": self.sqlite_path(logical, data_dir)}
        entry = {"ENGINE": "django.db.backends.postgresql", "NAME": self.name or logical,
                 "USER": self.user or "", "HOST": self.host or "", "PORT": str(self.port or "")}
        if self.password_secret:
            entry["PASSWORD"] = secrets.get(self.password_secret, "")
        return entry


HSTS_DEFAULT_MAX_AGE = 31536000  # one year


class Gig(Section):
    """An act booked at one or more domains: one nginx server block."""

    act: Name
    domains: tuple[Domain, ...] = Field(min_length=1)
    port: Port | None = None
    static: UrlPrefix | Literal[False] = "/static/"  # false: not served by nginx
    media: UrlPrefix | Literal[False] = "/media/"
    client_max_body_size: Annotated[str, AfterValidator(names.body_size)] = "10m"
    # HTTPS: a certificate (full chain) and its key, absolute paths on the hosts. With them,
    # nginx serves the gig on tls_port and its plain-HTTP port only redirects there.
    tls_certificate: RemotePath | None = None
    tls_key: RemotePath | None = None
    tls_port: Port = 443
    hsts: Annotated[bool, Strict()] | Annotated[int, Strict(), Field(ge=1, le=63072000)] = False

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None

    @property
    def hsts_max_age(self) -> int | None:
        """Seconds of ``Strict-Transport-Security`` to send, or None (HTTPS only)."""
        if not self.tls or self.hsts is False:
            return None
        return HSTS_DEFAULT_MAX_AGE if self.hsts is True else self.hsts


class Production(Section):
    """Everything one inventory file declares."""

    production: Name
    path: Path
    ssh: Ssh = Ssh()
    hosts: dict[Name, Host] = Field(min_length=1)
    venues: dict[Name, Venue] = {}
    acts: dict[Name, Act] = {}
    databases: dict[Name, Database] = {}
    gigs: dict[Name, Gig] = {}

    @property
    def name(self) -> str:
        return self.production

    def hosts_of(self, act: str) -> list[str]:
        """Names of the hosts an act plays on: those with one of its roles, or all."""
        roles = set(self.acts[act].roles)
        return [h for h, host in self.hosts.items() if not roles or roles & set(host.roles)]

    def acts_on(self, host: str) -> list[str]:
        return [a for a in self.acts if host in self.hosts_of(a)]

    def gigs_of(self, act: str) -> list[str]:
        return [g for g, gig in self.gigs.items() if gig.act == act]

    def act_user(self, act: str) -> str:
        """The unix user an act runs as in the system layout: ``bs-<production>-<act>``
        unless the inventory names one. The production is in the name because productions
        may share a host and must not share users."""
        return self.acts[act].user or system_name(f"{self.production}-{act}")

    def secrets_of(self, act: str) -> dict[str, Secret]:
        """The act's secrets, read from its secrets file now (values masked when shown)."""
        path = self.acts[act].secrets
        return read_secrets(path) if path else {}

    def redactor(self) -> Redactor:
        """Redacts the values of this production's secrets (and no one else's)."""
        return Redactor(value for act in self.acts for value in self.secrets_of(act).values())

    @property
    def group(self) -> str:
        """The unix group of the production's act users: it may write the ``data/`` folder."""
        return system_name(self.production)


def system_name(name: str) -> str:
    """``bs-<name>``, shortened to useradd's 32 characters with a hash that keeps it unique."""
    full = f"bs-{name}"
    if len(full) <= 32:
        return full
    return f"bs-{name[:22]}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def load_production(path: str | Path) -> Production:
    """Read, validate and cross-check an inventory file; raise InventoryError on any problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(path, None, "no such inventory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(path, None, f"invalid TOML: {exc}") from None
    data.setdefault("production", path.stem)
    if "path" in data:
        raise InventoryError(path, "path", "unknown key")
    try:
        production = Production.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise _first_error(path, exc) from None
    production = _resolve_local_paths(production)
    check_production(production)
    return production


def _first_error(path: Path, exc: ValidationError) -> InventoryError:
    error = exc.errors()[0]
    loc = [p for p in error["loc"] if not _PYDANTIC_TAG.fullmatch(str(p))]
    key = ".".join(_key_part(p) for p in loc)
    reason = {
        "extra_forbidden": "unknown key" + did_you_mean(str(loc[-1]), _keys_at(loc[:-1])),
        "missing": "required key is missing",
    }.get(error["type"], error["msg"].removeprefix("Value error, "))
    return InventoryError(path, key, reason)


def _keys_at(loc: list) -> list[str]:
    """The keys the inventory allows in the table at ``loc`` (for a did-you-mean)."""
    model, parts = Production, list(loc)
    while parts and model is not None:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field else None
        if typing.get_origin(annotation) is dict and parts:  # [hosts.<name>], [acts.<name>]...
            parts.pop(0)
            annotation = typing.get_args(annotation)[1]
        model = annotation if isinstance(annotation, type) and issubclass(annotation, Section) \
            else None
    return [k for k in model.model_fields if k != "path"] if model else []


# Parts pydantic adds to an error's location: union members and dict keys.
_PYDANTIC_TAG = re.compile(r"\[key\]|[a-z-]+\[.*\]")


def _key_part(part) -> str:
    """A part of a dotted key as the user wrote it, quoted when it is not a plain word."""
    text = str(part)
    return text if text.isprintable() and " " not in text and text else repr(text)


def _resolve_local_paths(production: Production) -> Production:
    """Make the local paths of the inventory absolute, relative to the inventory's folder."""
    base = production.path.resolve().parent

    def resolve(value: Path | None, key: str) -> Path | None:
        try:
            return None if value is None else (base / value.expanduser()).resolve()
        except (ValueError, RuntimeError, OSError) as exc:
            raise InventoryError(production.path, key, f"bad path: {exc}") from None

    ssh = production.ssh
    return production.model_copy(
        update={
            "ssh": ssh.model_copy(update={
                "config": resolve(ssh.config, "ssh.config"),
                "known_hosts": resolve(ssh.known_hosts, "ssh.known_hosts"),
            }),
            "venues": {
                n: v.model_copy(update={
                    "requirements": resolve(v.requirements, f"venues.{n}.requirements")})
                for n, v in production.venues.items()
            },
            "acts": {
                n: a.model_copy(update={"source": resolve(a.source, f"acts.{n}.source"),
                                        "secrets": resolve(a.secrets, f"acts.{n}.secrets")})
                for n, a in production.acts.items()
            },
        }
    )


def check_production(production: Production) -> None:
    """Cross-section checks: references, files, domains and ports."""
    fail = _Failer(production.path)
    _check_files(production, fail)
    _check_references(production, fail)
    _check_domains(production, fail)
    _check_ports(production, fail)
    _check_tls(production, fail)
    _check_hosts(production, fail)
    _check_users(production, fail)
    _check_socket_paths(production, fail)


class _Failer:
    def __init__(self, path):
        self.path = path

    def __call__(self, key, reason):
        raise InventoryError(self.path, key, reason)


def _check_files(production, fail):
    for name, venue in production.venues.items():
        if not venue.requirements.is_file():
            fail(f"venues.{name}.requirements", f"no such file: {venue.requirements}")
    for name, act in production.acts.items():
        if not act.source.is_dir():
            fail(f"acts.{name}.source", f"no such directory: {act.source}")
        for key, relative, kind in [("source_root", act.source_root, "directory"),
                                    *(("pythonpath", p, "directory") for p in act.pythonpath),
                                    ("manage", act.manage_path, "file")]:
            _check_inside(act.source, relative, kind, f"acts.{name}.{key}", fail)
        if act.secrets is not None:
            if not act.secrets.is_file():
                fail(f"acts.{name}.secrets", f"no such file: {act.secrets}")
            read_env_file(act.secrets)  # each line is KEY=value, or the file is refused now
    for key in ("config", "known_hosts"):
        value = getattr(production.ssh, key)
        if value is not None and not value.is_file():
            fail(f"ssh.{key}", f"no such file: {value}")


def _check_inside(source: Path, relative: str, kind: str, key: str, fail) -> None:
    """A folder or file of an act's repository: it exists and, links followed, stays inside."""
    path = source / relative
    try:
        exists = path.is_dir() if kind == "directory" else path.is_file()
        inside = path.resolve().is_relative_to(source.resolve())
    except (OSError, RuntimeError) as error:  # a name too long; a loop of links (3.11)
        fail(key, f"{path}: {getattr(error, 'strerror', None) or error}")
    if not exists:
        fail(key, f"no such {kind}: {path}")
    if not inside:
        fail(key, f"{path} leads outside the act's source {source}")


def _check_references(production, fail):
    roles = {role for host in production.hosts.values() for role in host.roles}
    for name, act in production.acts.items():
        if act.venue not in production.venues:
            fail(f"acts.{name}.venue", _unknown("venue", act.venue, production.venues))
        for role in act.roles:
            if role not in roles:
                fail(f"acts.{name}.roles", f"no host has the role {role!r}")
        for database in act.databases:
            if database not in production.databases:
                fail(f"acts.{name}.databases", _unknown("database", database, production.databases))
            secret = production.databases[database].password_secret
            if secret and (act.secrets is None or secret not in read_env_file(act.secrets)):
                fail(f"databases.{database}.password_secret",
                     f"{secret} is not in the secrets file of act {name!r}")
    for name, database in production.databases.items():
        owner = database.migrate_with
        if owner and name not in (production.acts.get(owner).databases
                                  if owner in production.acts else ()):
            fail(f"databases.{name}.migrate_with", f"act {owner!r} does not use database {name!r}")
    _check_local_migrations(production, fail)
    for name, gig in production.gigs.items():
        if gig.act not in production.acts:
            fail(f"gigs.{name}.act", _unknown("act", gig.act, production.acts))


def _check_local_migrations(production, fail):
    """A sqlite database lives on each host: the act that migrates it must play wherever an
    act uses it, or some host's file would never be migrated."""
    for name, database in production.databases.items():
        owner = database.migrate_with
        if database.shared or owner not in production.acts:
            continue
        covered = set(production.hosts_of(owner))
        for act_name, act in production.acts.items():
            missing = [h for h in production.hosts_of(act_name) if h not in covered]
            if name in act.databases and missing:
                fail(f"databases.{name}.migrate_with", f"act {owner!r} does not play on host "
                     f"{missing[0]!r}, where act {act_name!r} uses this sqlite database")


def _unknown(kind, value, known):
    return f"unknown {kind} {value!r}" + known_hint(value, known)


def _check_domains(production, fail):
    seen = {}
    for name, gig in production.gigs.items():
        if len(set(gig.domains)) != len(gig.domains):
            fail(f"gigs.{name}.domains", "a domain is listed twice")
        for domain in gig.domains:
            if domain in seen:
                fail(f"gigs.{name}.domains", f"domain {domain!r} is also booked by {seen[domain]}")
            seen[domain] = f"gigs.{name}"


def _check_ports(production, fail):
    for host_name, host in production.hosts.items():
        nginx_ports = {host.http_port or default_http_port(host)}
        nginx_ports |= {
            production.gigs[g].port
            for a in production.acts_on(host_name)
            for g in production.gigs_of(a)
            if production.gigs[g].port
        }
        taken = {port: "nginx" for port in nginx_ports}
        for act_name in production.acts_on(host_name):
            port = production.acts[act_name].http_port
            if port is None:
                continue
            if port in taken:
                fail(
                    f"acts.{act_name}.http_port",
                    f"port {port} clashes with {taken[port]} on host {host_name!r}",
                )
            taken[port] = f"acts.{act_name}"


def _check_tls(production, fail):
    for name, gig in production.gigs.items():
        if (gig.tls_certificate is None) != (gig.tls_key is None):
            missing = "tls_key" if gig.tls_key is None else "tls_certificate"
            fail(f"gigs.{name}.{missing}", "HTTPS needs both tls_certificate and tls_key")
        if not gig.tls:
            if gig.hsts is not False:
                fail(f"gigs.{name}.hsts", "HSTS needs HTTPS: set tls_certificate and tls_key")
            continue
        for host_name in production.hosts_of(gig.act):
            host = production.hosts[host_name]
            http_port = gig.port or host.http_port or default_http_port(host)
            if gig.tls_port == http_port:
                fail(f"gigs.{name}.tls_port", f"port {gig.tls_port} is also the gig's plain-HTTP "
                     f"port on host {host_name!r}")
            if host.layout == "user" and gig.tls_port < 1024:
                fail(f"gigs.{name}.tls_port", f"port {gig.tls_port} needs privileges; host "
                     f"{host_name!r} runs nginx unprivileged (user layout): use 1024 or above")
            for act_name in production.acts_on(host_name):
                if production.acts[act_name].http_port == gig.tls_port:
                    fail(f"acts.{act_name}.http_port", f"port {gig.tls_port} clashes with "
                         f"gigs.{name}.tls_port on host {host_name!r}")


def default_http_port(host: Host) -> int:
    """nginx's port for gigs: 80 in the system layout, 8080 in the unprivileged user layout."""
    return 80 if host.layout == "system" else 8080


def _check_hosts(production, fail):
    for name, host in production.hosts.items():
        if host.layout != "user":
            continue
        if not host.root and not host.user:
            fail(f"hosts.{name}.root", "the user layout needs 'root' (or 'user', for "
                 "/home/<user>/backstage)")
        for key in ("http_port",):
            port = getattr(host, key)
            if port is not None and port < 1024:
                fail(f"hosts.{name}.{key}", f"port {port} needs privileges; the user layout "
                     "runs nginx unprivileged: use 1024 or above")


def _check_users(production, fail):
    """Act users must not be an SSH user or nginx's group, nor share a sqlite file."""
    for name, host in production.hosts.items():
        if host.become and host.layout == "user":
            fail(f"hosts.{name}.become", "the user layout needs no privileges: remove 'become'")
    taken = {h.user for h in production.hosts.values()} | {h.nginx_group for h in
                                                           production.hosts.values()}
    for act in production.acts:
        user = production.act_user(act)
        if user in taken or user == production.group:
            fail(f"acts.{act}.user", f"{user!r} is an SSH user, nginx's group or the "
                 "production's group: an act needs a user of its own")
    for host_name, host in production.hosts.items():
        if host.layout == "system":
            _check_sqlite_users(production, host_name, fail)


def _check_sqlite_users(production, host, fail):
    """A sqlite file lives on each host and is written by one user."""
    acts = production.acts_on(host)
    for name, database in production.databases.items():
        users = sorted({production.act_user(a) for a in acts
                        if name in production.acts[a].databases})
        if not database.shared and len(users) > 1:
            fail(f"databases.{name}", f"a sqlite file is written by one user, but on host "
                 f"{host!r} the acts using it run as {', '.join(users)}: give them the same "
                 "'user'")


# uWSGI refuses unix socket paths longer than this (sun_path minus its own margin).
MAX_SOCKET_PATH = 102
RELEASE_ID_LENGTH = len("20260101T000000000Z-0123abcd")


def _check_socket_paths(production, fail):
    from backstage.model.layout import Layout

    for host_name, host in production.hosts.items():
        layout = Layout.for_host(production.name, host)
        for act in production.acts_on(host_name):
            path = layout.stats_socket(act, "x" * RELEASE_ID_LENGTH)
            if len(path.encode()) > MAX_SOCKET_PATH:
                fail(f"acts.{act}", f"its sockets on host {host_name!r} would be "
                     f"{len(path.encode())} bytes long ({path}), over uWSGI's limit of "
                     f"{MAX_SOCKET_PATH}: use shorter production/act names or host root")
