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
from backstage.model import names, servers
from backstage.model.envfile import read_env_file, read_secrets, read_secrets_command
from backstage.model.secrets import Redactor, Secret

Name = Annotated[str, AfterValidator(names.name)]
Domain = Annotated[str, AfterValidator(names.domain)]
GigDomain = Annotated[str, AfterValidator(names.gig_domain)]
Int = Annotated[int, Strict()]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
EnvKey = Annotated[str, AfterValidator(names.env_key)]
EnvValue = Annotated[str, AfterValidator(names.env_value)]
Interpreter = Annotated[str, AfterValidator(names.interpreter)]
RemotePath = Annotated[str, AfterValidator(names.absolute_path)]
UrlPrefix = Annotated[str, AfterValidator(names.url_prefix)]
UnixUser = Annotated[str, AfterValidator(names.unix_user)]
IPv4 = Annotated[str, AfterValidator(names.ipv4)]
IPv6 = Annotated[str, AfterValidator(names.ipv6)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9_.:\[\]-]+(/[A-Za-z0-9_./~%-]*)?$")]


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
    # The addresses the world reaches this host at: the A and AAAA records of its gigs.
    public_address: IPv4 | None = None
    public_address6: IPv6 | None = None


class Venue(Section):
    """A virtualenv: an interpreter and a requirements file (relative to the inventory)."""

    python: Interpreter | None = None
    requirements: Path


class Health(Section):
    """How a new release is checked through its own socket before it gets traffic.

    With no ``path``, ``/`` answering anything below 500 will do (a service whose ``/`` is a
    404 still proves it runs); with a ``path``, its ``status`` (200 unless given)."""

    path: str | None = Field(None, pattern=r"^/[A-Za-z0-9_./?=&%-]*$")
    host: Domain | None = None
    status: Int | None = Field(None, ge=100, le=599)
    timeout: float = Field(5.0, gt=0, le=300)
    retries: Int = Field(20, ge=1, le=600)

    @property
    def expected(self) -> int | None:
        """The status a check wants; None: any below 500."""
        return self.status or (200 if self.path else None)


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
# The module name of an act's settings_file in its release (next to the settings overlay).
ACT_SETTINGS_MODULE = "backstage_act_settings"
DatabaseAlias = Annotated[str, AfterValidator(names.database_alias)]


HookCommand = Annotated[str, Field(min_length=1, max_length=4000)]


class Hooks(Section):
    """Commands run at named points of an act's deploys and rollbacks (``bash -c``), with the
    deploy's ``BACKSTAGE_*`` variables (see :mod:`backstage.operations.hooks`):
    ``before_deploy``, ``after_deploy`` and ``after_rollback`` on the workstation;
    ``after_prepare``, ``before_switch`` and ``after_switch`` on each host, as the act in the
    new release."""

    before_deploy: HookCommand | None = None
    after_prepare: HookCommand | None = None
    before_switch: HookCommand | None = None
    after_switch: HookCommand | None = None
    after_deploy: HookCommand | None = None
    after_rollback: HookCommand | None = None


class Act(Section):
    """A Django application and how it runs.

    ``source`` is the folder uploaded as the release: a whole repository, for a service in a
    monorepo. Inside it, ``source_root`` is the service's folder, first on the import path,
    where ``manage`` is found; ``pythonpath`` adds folders of the repository after it (shared
    apps, say). ``settings`` and ``wsgi`` are modules on that path.

    ``databases`` names the production's logical databases the act uses, each under the
    Django alias of its name (a list), or maps the project's own aliases to them (a table:
    ``{ default = "main" }``). With ``settings_overlay`` (the default) Backstage runs the act
    with a settings module of its own that imports ``settings`` and then sets what the
    deployment owns (see :mod:`backstage.model.django`).
    """

    venue: Name
    source: Path
    source_root: RelativeDir = "."
    pythonpath: tuple[RelativeDir, ...] = ()
    settings: Annotated[str, AfterValidator(names.dotted)] | None = None
    # A settings module kept outside the repository (a local file), shipped with each release.
    settings_file: Path | None = None
    wsgi: Annotated[str, AfterValidator(names.wsgi_callable)] | None = None
    manage: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$"),
                      AfterValidator(names.relative_file)] = "manage.py"
    processes: Int = Field(2, ge=1, le=256)
    threads: Int = Field(1, ge=1, le=256)
    env: dict[EnvKey, EnvValue] = {}
    secrets: Path | None = None
    # Instead of a file: a command printing KEY=value lines on the workstation ("pass show
    # shop/storefront", "op read ..."), run by bash in the inventory's folder when needed.
    secrets_command: Annotated[str, Field(min_length=1)] | None = None
    http_port: Port | None = None
    roles: tuple[Name, ...] = ()
    databases: tuple[Name, ...] | dict[DatabaseAlias, Name] = ()
    settings_overlay: Annotated[bool, Strict()] = True
    static: Annotated[bool, Strict()] = True  # false: no collectstatic
    needs: tuple[Name, ...] = ()  # acts a deploy of several switches before this one
    health: Health = Health()
    smoke: Annotated[tuple[Smoke, ...], BeforeValidator(names.list_of_tables)] = \
        Field((), max_length=50)
    keep_releases: Int = Field(5, ge=2, le=100)
    keep_snapshots: Int = Field(5, ge=1, le=100)  # per logical database, on each host
    # After each batch switches, watch the act's traffic through nginx for this many
    # seconds (0: no bake); past max_error_rate more 5xx than before the switch (and at
    # least bake_min_errors of them), the rollout stops and reverts (operations/bake.py).
    bake: float = Field(3.0, ge=0, le=3600)
    max_error_rate: Annotated[float, BeforeValidator(names.share)] = 0.01
    bake_min_errors: Int = Field(5, ge=1, le=1_000_000)
    # Seconds a deploy's lock lives without its holder renewing it (default: the production's).
    lock_timeout: float | None = Field(None, ge=5, le=86400)
    user: UnixUser | None = None  # system layout: the unix user it runs as (default: derived)
    # Past this size each deploy rotates the act's log into one backup (<log>.1).
    log_max_size: Annotated[str, AfterValidator(names.log_size)] = "50m"
    # Deploys may apply destructive or irreversible migrations (as --allow-destructive).
    allow_destructive: Annotated[bool, Strict()] = False

    hooks: Hooks = Hooks()

    # The application server (backstage.model.servers) and what it runs.
    server: Literal["uwsgi", "gunicorn", "granian"] = "uwsgi"
    interface: Literal["wsgi", "asgi"] = "wsgi"
    asgi: Annotated[str, AfterValidator(names.wsgi_callable)] | None = None
    gunicorn: servers.Gunicorn | None = None
    granian: servers.Granian | None = None

    @model_validator(mode="after")
    def _server_fits(self):
        if self.interface not in servers.INTERFACES[self.server]:
            raise ValueError(f"interface = \"{self.interface}\" needs a server that runs it "
                             f"(server = \"{self.server}\" runs "
                             f"{', '.join(servers.INTERFACES[self.server])} only)")
        if self.asgi and self.interface != "asgi":
            raise ValueError("'asgi' names the ASGI callable of interface = \"asgi\"")
        for other in ("gunicorn", "granian"):
            if getattr(self, other) is not None and other != self.server:
                raise ValueError(f"[{other}] options need server = \"{other}\" "
                                 f"(this act's server is \"{self.server}\")")
        return self

    @property
    def server_options(self) -> servers.Options | None:
        """The act's HTTP server's options (defaults when its table is absent)."""
        if not servers.speaks_http(self.server):
            return None
        given = getattr(self, self.server)
        return given or {"gunicorn": servers.Gunicorn, "granian": servers.Granian}[self.server]()

    @property
    def import_path(self) -> tuple[str, ...]:
        """Folders of the release on the act's import path, relative to the release."""
        return tuple(dict.fromkeys([self.source_root, *self.pythonpath]))

    @model_validator(mode="after")
    def _settings_given(self):
        if (self.settings is None) == (self.settings_file is None):
            raise ValueError("give 'settings' (a module of the source) or 'settings_file' "
                             "(a file kept outside it), one of them")
        return self

    @property
    def settings_module(self) -> str:
        """The act's own settings module: ``settings``, or the shipped ``settings_file``'s."""
        return ACT_SETTINGS_MODULE if self.settings_file else self.settings

    @property
    def logical_databases(self) -> tuple[str, ...]:
        """The logical databases the act uses, each once, in the inventory's order."""
        return tuple(dict.fromkeys(self.database_aliases.values()))

    @property
    def migrates_own_sqlite(self) -> bool:
        """An act that names no logical database keeps its project's own ``default``; where
        that is a sqlite file, the overlay moved it to the host's ``data/<act>/``, and each
        host's deploy migrates it (``startproject``'s ``db.sqlite3``, say)."""
        return self.settings_overlay and not self.databases

    @property
    def database_aliases(self) -> dict[str, str]:
        """Django alias -> logical database."""
        if isinstance(self.databases, dict):
            return dict(self.databases)
        return {name: name for name in self.databases}

    def database_alias(self, logical: str) -> str:
        """The alias ``migrate --database`` names for a logical database (its first)."""
        return next(a for a, d in self.database_aliases.items() if d == logical)

    @property
    def log_max_bytes(self) -> int:
        return names.size_bytes(self.log_max_size)

    @property
    def manage_path(self) -> str:
        """manage.py, relative to the release (the repository's root)."""
        return self.manage if self.source_root == "." else f"{self.source_root}/{self.manage}"

    @property
    def wsgi_callable(self) -> str | None:
        """The WSGI callable; None: what Django's ``WSGI_APPLICATION`` setting names (Django's
        default handler when it names none), as ``runserver`` finds it."""
        return self.wsgi


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
    domains: tuple[GigDomain, ...] = Field(min_length=1)
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
    # "acme": the certificate comes from the [acme] directory (renew-certs), not from files.
    tls: Literal["acme"] | None = None
    # false: the Producer leaves this gig's DNS records alone (managed elsewhere).
    dns: Annotated[bool, Strict()] = True

    @property
    def https(self) -> bool:
        return self.tls_certificate is not None or self.tls == "acme"

    @property
    def hsts_max_age(self) -> int | None:
        """Seconds of ``Strict-Transport-Security`` to send, or None (HTTPS only)."""
        if not self.https or self.hsts is False:
            return None
        return HSTS_DEFAULT_MAX_AGE if self.hsts is True else self.hsts


class Producer(Section):
    """The DNS server whose records follow the gigs: PowerDNS, through its HTTP API.

    Its API key is the value of ``api_key_secret`` in the ``secrets`` file (KEY=value lines,
    relative to the inventory), never in the inventory itself.
    """

    kind: Literal["powerdns"] = "powerdns"
    api_url: HttpUrl
    server_id: str = Field("localhost", pattern=r"^[A-Za-z0-9_.-]+$")
    zones: tuple[Domain, ...] = Field(min_length=1)
    secrets: Path | None = None
    secrets_command: Annotated[str, Field(min_length=1)] | None = None  # as an act's
    api_key_secret: Annotated[str, AfterValidator(names.env_key)]
    ttl: Int = Field(300, ge=1, le=604800)
    timeout: float = Field(10.0, gt=0, le=300)

    def zone_of(self, domain: str) -> str | None:
        """The managed zone a domain is in (the longest that matches), or None."""
        matches = [z for z in self.zones if domain == z or domain.endswith("." + z)]
        return max(matches, key=len) if matches else None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.secrets is None) == (self.secrets_command is None):
            raise ValueError("give secrets (a file) or secrets_command, one of them")
        return self

    def api_key(self, inventory: Path) -> Secret:
        """The API key, from the secrets file or command (``inventory``: the file naming it)."""
        if self.secrets_command:
            values = read_secrets_command(self.secrets_command, inventory,
                                          "producer.secrets_command")
        else:
            values = read_secrets(self.secrets)
        key = values.get(self.api_key_secret)
        if key is None:
            raise InventoryError(self.secrets or inventory, self.api_key_secret,
                                 "not in the producer's secrets (producer.api_key_secret "
                                 "names it)")
        return key


class Acme(Section):
    """The ACME directory certificates of ``tls = "acme"`` gigs come from: DNS-01 through the
    Producer (any number of hosts, wildcard domains), or HTTP-01 through the hosts' nginx (no
    Producer needed; no wildcard). The account key lives on the workstation, under the cache
    directory."""

    directory: HttpUrl
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    challenge: Literal["dns-01", "http-01"] = "dns-01"
    # The CA bundle that verifies the directory's own HTTPS (a test or private ACME server).
    ca_bundle: Path | None = None
    renew_days: Int = Field(30, ge=1, le=365)


class Notify(Section):
    """Webhooks told of each deploy, rollback and maintenance change: one JSON document
    (``format = "slack"``: ``{"text": ...}``, which Slack's incoming webhooks take) posted to
    each URL, within ``timeout`` seconds, tried ``retries`` more times when it fails. A URL
    may hold a token: it is never printed whole."""

    webhooks: tuple[Annotated[str, Field(pattern=r"^https?://[^\s/?#]+[^\s]*$")], ...] = \
        Field(min_length=1)
    format: Literal["json", "slack"] = "json"
    timeout: float = Field(5, gt=0, le=60)
    retries: Int = Field(2, ge=0, le=10)


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
    producer: Producer | None = None
    acme: Acme | None = None
    notify: Notify | None = None
    # A deploy renews its locks' lease while it runs; one from another machine not renewed
    # for this many seconds is taken over by the next deploy (see operations/checks.py).
    lock_timeout: float = Field(300, ge=5, le=86400)

    @property
    def name(self) -> str:
        return self.production

    def lock_timeout_of(self, act: str) -> float:
        """The lease of a deploy's locks of ``act``: the act's ``lock_timeout``, else the
        production's."""
        return self.acts[act].lock_timeout or self.lock_timeout

    def hosts_of(self, act: str) -> list[str]:
        """Names of the hosts an act plays on: those with one of its roles, or all."""
        roles = set(self.acts[act].roles)
        return [h for h, host in self.hosts.items() if not roles or roles & set(host.roles)]

    def acts_on(self, host: str) -> list[str]:
        return [a for a in self.acts if host in self.hosts_of(a)]

    def deploy_order(self, acts: list[str]) -> list[str]:
        """``acts`` ordered so that each comes after the acts it ``needs`` (those among
        ``acts``), otherwise in the inventory's order; the inventory has no cycle."""
        chosen = [a for a in self.acts if a in acts]
        ordered: list[str] = []

        def visit(act: str) -> None:
            if act not in ordered:
                for needed in self.acts[act].needs:
                    if needed in chosen:
                        visit(needed)
                ordered.append(act)

        for act in chosen:
            visit(act)
        return ordered

    def gigs_of(self, act: str) -> list[str]:
        return [g for g, gig in self.gigs.items() if gig.act == act]

    def act_user(self, act: str) -> str:
        """The unix user an act runs as in the system layout: ``bs-<production>-<act>``
        unless the inventory names one. The production is in the name because productions
        may share a host and must not share users."""
        return self.acts[act].user or system_name(f"{self.production}-{act}")

    def secrets_of(self, act: str) -> dict[str, Secret]:
        """The act's secrets, read from its secrets file now (values masked when shown)."""
        given = self.acts[act]
        if given.secrets_command:
            return read_secrets_command(given.secrets_command, self.path,
                                        f"acts.{act}.secrets_command")
        return read_secrets(given.secrets) if given.secrets else {}

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
    defaults = _act_defaults(path, data.pop("defaults", {}))
    own = data.get("acts")
    if isinstance(own, dict):
        data["acts"] = {name: _inherit(defaults, act) for name, act in own.items()}
    try:
        production = Production.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise _first_error(path, exc, own, defaults) from None
    production = _resolve_local_paths(production)
    check_production(production)
    return production


def _act_defaults(path: Path, defaults) -> dict:
    """``[defaults.acts]``: keys every act has unless it sets them itself."""
    if not isinstance(defaults, dict) or set(defaults) - {"acts"}:
        raise InventoryError(path, "defaults", "only a [defaults.acts] table is known here")
    acts = defaults.get("acts", {})
    if not isinstance(acts, dict):
        raise InventoryError(path, "defaults.acts", "must be a table")
    for key in acts:
        if key not in Act.model_fields:
            raise InventoryError(path, f"defaults.acts.{key}", "unknown key"
                                 + did_you_mean(key, list(Act.model_fields)))
    return acts


def _inherit(defaults: dict, act):
    """An act's table over the defaults; ``env`` and ``health`` tables merge key by key."""
    if not isinstance(act, dict):
        return act
    merged = {**defaults, **act}
    for key in ("env", "health"):
        if isinstance(defaults.get(key), dict) and isinstance(act.get(key), dict):
            merged[key] = {**defaults[key], **act[key]}
    return merged


def _first_error(path: Path, exc: ValidationError, acts=None,
                 defaults: dict | None = None) -> InventoryError:
    """The first error, named by its dotted key (``defaults.acts.<key>`` when an act's bad
    value came from the defaults)."""
    error = exc.errors()[0]
    loc = [p for p in error["loc"] if not _PYDANTIC_TAG.fullmatch(str(p))]
    if defaults and len(loc) >= 3 and loc[0] == "acts" and loc[2] in defaults \
            and loc[2] not in ((acts or {}).get(loc[1]) or {}):
        loc = ["defaults", "acts", *loc[2:]]
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
                n: a.model_copy(update={
                    "source": resolve(a.source, f"acts.{n}.source"),
                    "secrets": resolve(a.secrets, f"acts.{n}.secrets"),
                    "settings_file": resolve(a.settings_file, f"acts.{n}.settings_file")})
                for n, a in production.acts.items()
            },
            "producer": production.producer and production.producer.model_copy(update={
                "secrets": resolve(production.producer.secrets, "producer.secrets")}),
            "acme": production.acme and production.acme.model_copy(update={
                "ca_bundle": resolve(production.acme.ca_bundle, "acme.ca_bundle")}),
        }
    )


def check_production(production: Production) -> None:
    """Cross-section checks: references, files, domains and ports."""
    fail = _Failer(production.path)
    _check_files(production, fail)
    _check_references(production, fail)
    _check_needs(production, fail)
    _check_domains(production, fail)
    _check_ports(production, fail)
    _check_tls(production, fail)
    _check_hosts(production, fail)
    _check_users(production, fail)
    _check_socket_paths(production, fail)
    _check_producer(production, fail)


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
        if act.settings_file is not None and not act.settings_file.is_file():
            fail(f"acts.{name}.settings_file", f"no such file: {act.settings_file}")
        if act.secrets is not None and act.secrets_command is not None:
            fail(f"acts.{name}.secrets_command", "give secrets (a file) or secrets_command, "
                 "one of them")
        if act.secrets is not None:
            if not act.secrets.is_file():
                fail(f"acts.{name}.secrets", f"no such file: {act.secrets}")
            read_env_file(act.secrets)  # each line is KEY=value, or the file is refused now
    for key, value in [("ssh.config", production.ssh.config),
                       ("ssh.known_hosts", production.ssh.known_hosts),
                       ("producer.secrets", production.producer and production.producer.secrets),
                       ("acme.ca_bundle", production.acme and production.acme.ca_bundle)]:
        if value is not None and not value.is_file():
            fail(key, f"no such file: {value}")


def check_modules(production: Production) -> None:
    """Each act's ``settings`` and ``wsgi`` modules are in its source tree, on its import path
    (what ``check`` adds to loading: a module of an installed package is not found here)."""
    fail = _Failer(production.path)
    for name, act in production.acts.items():
        modules = [("settings", act.settings)] if act.settings else []
        if act.wsgi:
            modules.append(("wsgi", act.wsgi.split(":")[0]))
        for key, module in modules:
            folders = [act.source / folder for folder in act.import_path]
            relative = Path(*module.split("."))
            if not any((f / relative).with_suffix(".py").is_file() or (f / relative).is_dir()
                       for f in folders):
                fail(f"acts.{name}.{key}", f"no module {module} in "
                     f"{', '.join(str(f) for f in folders)}")


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
        for database in act.logical_databases:
            if database not in production.databases:
                fail(f"acts.{name}.databases", _unknown("database", database, production.databases))
            secret = production.databases[database].password_secret
            if secret and act.secrets_command is None and (  # a command runs when needed
                    act.secrets is None or secret not in read_env_file(act.secrets)):
                fail(f"databases.{database}.password_secret",
                     f"{secret} is not in the secrets file of act {name!r}")
    for name, database in production.databases.items():
        owner = database.migrate_with
        if owner and name not in (production.acts.get(owner).logical_databases
                                  if owner in production.acts else ()):
            fail(f"databases.{name}.migrate_with", f"act {owner!r} does not use database {name!r}")
    _check_local_migrations(production, fail)
    for name, gig in production.gigs.items():
        if gig.act not in production.acts:
            fail(f"gigs.{name}.act", _unknown("act", gig.act, production.acts))


def _check_needs(production, fail):
    """``needs`` names acts of the production, and no act needs itself through others."""
    for name, act in production.acts.items():
        for needed in act.needs:
            if needed not in production.acts:
                fail(f"acts.{name}.needs", _unknown("act", needed, production.acts))

    def cycle(path: list[str]) -> list[str] | None:
        for needed in production.acts[path[-1]].needs:
            if needed in path:
                return [*path[path.index(needed):], needed]
            found = cycle([*path, needed])
            if found:
                return found
        return None

    for name in production.acts:
        found = cycle([name])
        if found:
            fail(f"acts.{found[0]}.needs", f"a cycle: {' -> '.join(found)}")


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
            if name in act.logical_databases and missing:
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


def _check_acme_gig(production, name, gig, fail):
    """A ``tls = "acme"`` gig: [acme], no certificate files of its own, and what its challenge
    needs: DNS-01 a [producer] managing each domain's zone, HTTP-01 no wildcard domain."""
    http01 = production.acme is not None and production.acme.challenge == "http-01"
    if production.acme is None or gig.tls_certificate or (not http01 and
                                                           production.producer is None):
        fail(f"gigs.{name}.tls", "tls = \"acme\" needs an [acme] section ([producer] too for "
             "its default challenge, DNS-01) and no tls_certificate/tls_key")
    if http01:
        wildcard = next((d for d in gig.domains if d.startswith("*.")), None)
        if wildcard:
            fail(f"gigs.{name}.domains", f"domain {wildcard!r}: a wildcard certificate needs "
                 "the DNS-01 challenge (acme.challenge = \"dns-01\" and a [producer])")
        return
    outside = [d for d in gig.domains if production.producer.zone_of(d) is None]
    if outside:
        fail(f"gigs.{name}.domains", f"domain {outside[0]!r} is in no zone the producer "
             "manages: its DNS-01 challenge could not be answered")


def _check_tls(production, fail):
    for name, gig in production.gigs.items():
        if (gig.tls_certificate is None) != (gig.tls_key is None):
            missing = "tls_key" if gig.tls_key is None else "tls_certificate"
            fail(f"gigs.{name}.{missing}", "HTTPS needs both tls_certificate and tls_key")
        if gig.tls == "acme":
            _check_acme_gig(production, name, gig, fail)
        if not gig.https:
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
                        if name in production.acts[a].logical_databases})
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


def _check_producer(production, fail):
    """With a Producer, each gig's domains are in a zone it manages (unless ``dns = false``)
    and each host those records point at has a public address."""
    producer = production.producer
    if producer is None:
        return
    for name, gig in production.gigs.items():
        if not gig.dns:
            continue
        for domain in gig.domains:
            if producer.zone_of(domain) is None:
                fail(f"gigs.{name}.domains", f"domain {domain!r} is in no zone the producer "
                     f"manages ({', '.join(producer.zones)}): add its zone, or set dns = false")
        for host in production.hosts_of(gig.act):
            if production.hosts[host].public_address is None and \
                    production.hosts[host].public_address6 is None:
                fail(f"hosts.{host}.public_address", f"required: gig {name!r} plays here and "
                     "the producer makes its records")
