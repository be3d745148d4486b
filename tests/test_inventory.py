"""The model layer: loading and validating an inventory file (no I/O beyond local files)."""

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backstage.errors import InventoryError
from backstage.model import Layout, load_production, names
from backstage.model.envfile import read_env_file

ROOT = Path(__file__).resolve().parents[1]
BACKSTAGE = ROOT / ".venv" / "bin" / "backstage"
EXAMPLE = ROOT / "examples" / "storefront"


# --- a tiny TOML writer, so that any text can be put in any key or value -----------------------

def toml_str(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08X}")
    return '"' + "".join(out) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_str(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def dump_toml(data: dict, prefix: tuple = ()) -> str:
    lines = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k not in INLINE_TABLES}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{toml_str(key)} = {toml_value(value)}")
    for key, value in tables.items():
        path = (*prefix, key)
        lines.append("\n[" + ".".join(toml_str(p) for p in path) + "]")
        lines.append(dump_toml(value, path))
    return "\n".join(line for line in lines if line) + "\n"


# Written inline (``env = {...}``); every other nested dict becomes a ``[table]``.
INLINE_TABLES = ("env", "health")


def base_inventory() -> dict:
    """A valid inventory whose files are relative to an inventory in ``<tmp>/inventories/``."""
    return {
        "hosts": {"web1": {"roles": ["web"]}},
        "venues": {"shop": {"requirements": "../app/requirements.txt"}},
        "acts": {
            "storefront": {
                "venue": "shop",
                "source": "../app",
                "settings": "storefront.settings",
                "roles": ["web"],
                "databases": ["users"],
                "env": {"GREETING": "hello"},
            }
        },
        "databases": {"users": {}},
        "gigs": {"shop": {"act": "storefront", "domains": ["shop.example.test"]}},
    }


def make_project(root: Path) -> Path:
    app = root / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "manage.py").write_text("print('manage')\n")
    (app / "storefront").mkdir()  # the settings module 'check' looks for
    (app / "storefront" / "settings.py").write_text("")
    (app / "sub").mkdir()  # a folder without manage.py
    (app / "outside").symlink_to(root)  # a link out of the source
    (app / "requirements.txt").write_text("Django>=5\n")
    (root / "inventories").mkdir(exist_ok=True)
    return root


def write_inventory(root: Path, data: dict, name: str = "shop") -> Path:
    path = root / "inventories" / f"{name}.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path)


def expect_error(path: Path) -> InventoryError:
    with pytest.raises(InventoryError) as info:
        load_production(path)
    exc = info.value
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(str(path) + ": "), message
    assert exc.exit_code == 2
    return exc


# --- a valid inventory ------------------------------------------------------------------------

def test_valid_inventory_loads_with_defaults(project, monkeypatch):
    path = write_inventory(project, base_inventory())
    monkeypatch.chdir("/")  # relative paths follow the inventory file, not the working directory
    production = load_production(path)

    assert production.name == "shop"  # the file's stem
    assert production.path == path
    host = production.hosts["web1"]
    assert host.layout == "system"
    assert host.python == "python3"
    assert host.user is None and host.port is None and host.root is None
    act = production.acts["storefront"]
    assert act.wsgi is None
    assert act.wsgi_callable is None  # Django's WSGI_APPLICATION
    assert act.source == (project / "app").resolve()
    assert act.source.is_absolute()
    assert production.venues["shop"].requirements == (project / "app" / "requirements.txt").resolve()
    assert act.processes == 2 and act.threads == 1 and act.keep_releases == 5
    assert act.log_max_size == "50m" and act.log_max_bytes == 50 * 1024 * 1024
    assert act.manage == "manage.py"
    assert act.env == {"GREETING": "hello"}
    assert act.health.path is None and act.health.expected is None  # "/" below 500
    gig = production.gigs["shop"]
    assert gig.port is None and gig.static == "/static/" and gig.media == "/media/"
    assert gig.client_max_body_size == "10m"
    assert production.databases["users"].file_name("users") == "users.sqlite3"
    assert production.hosts_of("storefront") == ["web1"]
    assert production.acts_on("web1") == ["storefront"]
    assert production.gigs_of("storefront") == ["shop"]
    layout = Layout.for_host(production.name, host)
    assert layout.root == "/srv/backstage/shop"
    assert layout.http_port == 80


def test_paths_resolve_relative_to_the_inventory_file(project, monkeypatch):
    data = base_inventory()
    data["acts"]["storefront"]["secrets"] = "secrets.env"
    (project / "inventories" / "secrets.env").write_text("A=1\n")
    path = write_inventory(project, data)
    monkeypatch.chdir(project / "app")  # secrets.env does not exist here
    act = load_production(path).acts["storefront"]
    assert act.secrets == (project / "inventories" / "secrets.env").resolve()


def test_example_storefront_source_loads(tmp_path):
    data = base_inventory()
    data["venues"]["shop"]["requirements"] = str(EXAMPLE / "requirements.txt")
    data["acts"]["storefront"]["source"] = str(EXAMPLE)
    path = tmp_path / "example.toml"
    path.write_text(dump_toml(data))
    production = load_production(path)
    assert production.name == "example"
    assert production.acts["storefront"].source == EXAMPLE


def test_explicit_production_name_and_wsgi_are_kept(project):
    data = base_inventory()
    data["production"] = "other"
    data["acts"]["storefront"]["wsgi"] = "storefront.asgi_or_wsgi:app"
    production = load_production(write_inventory(project, data))
    assert production.name == "other"
    assert production.acts["storefront"].wsgi_callable == "storefront.asgi_or_wsgi:app"


def test_forty_character_names_are_fine(project):
    data = base_inventory()
    long = "a" + "b" * 39
    data["hosts"] = {long: {"roles": [long]}}
    data["acts"]["storefront"]["roles"] = [long]
    production = load_production(write_inventory(project, data))
    assert list(production.hosts) == [long]


def test_same_http_port_on_different_hosts_is_fine(project):
    data = base_inventory()
    data["hosts"]["web2"] = {"roles": ["back"]}
    data["acts"]["storefront"]["http_port"] = 9001
    data["acts"]["back"] = {**data["acts"]["storefront"], "roles": ["back"], "http_port": 9001}
    production = load_production(write_inventory(project, data))
    assert production.hosts_of("back") == ["web2"]
    assert production.hosts_of("storefront") == ["web1"]


# --- every error class: one line, file, dotted key, reason -------------------------------------

def _set(*keys_and_value):
    *keys, value = keys_and_value

    def mutate(data):
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return mutate


def _delete(*keys):
    def mutate(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return mutate


def _both(*mutations):
    def mutate(data):
        for m in mutations:
            m(data)
    return mutate


ERRORS = [
    # unknown keys
    ("unknown-top", _set("bogus", 1), "bogus", "unknown key"),
    ("unknown-path", _set("path", "x"), "path", "unknown key"),
    ("unknown-host", _set("hosts", "web1", "bogus", 1), "hosts.web1.bogus", "unknown key"),
    ("unknown-act", _set("acts", "storefront", "bogus", 1), "acts.storefront.bogus", "unknown key"),
    ("unknown-health", _set("acts", "storefront", "health", {"bogus": 1}),
     "acts.storefront.health.bogus", "unknown key"),
    ("unknown-gig", _set("gigs", "shop", "bogus", 1), "gigs.shop.bogus", "unknown key"),
    ("missing-required", _delete("acts", "storefront", "venue"), "acts.storefront.venue",
     "required key is missing"),
    ("missing-settings", _delete("acts", "storefront", "settings"), "acts.storefront",
     "give 'settings' (a module of the source) or 'settings_file'"),
    # dangling references
    ("act-venue", _set("acts", "storefront", "venue", "nope"), "acts.storefront.venue",
     "unknown venue 'nope' (known: shop)"),
    ("gig-act", _set("gigs", "shop", "act", "nope"), "gigs.shop.act",
     "unknown act 'nope' (known: storefront)"),
    ("act-role", _set("acts", "storefront", "roles", ["db"]), "acts.storefront.roles",
     "no host has the role 'db'"),
    ("act-database", _set("databases", {}), "acts.storefront.databases",
     "unknown database 'users' (known: none declared)"),
    # port clashes
    ("http-port-vs-nginx-system", _set("acts", "storefront", "http_port", 80),
     "acts.storefront.http_port", "port 80 clashes with nginx on host 'web1'"),
    ("http-port-vs-nginx-user", _both(_set("hosts", "web1", "layout", "user"),
                                      _set("acts", "storefront", "http_port", 8080)),
     "acts.storefront.http_port", "port 8080 clashes with nginx on host 'web1'"),
    ("http-port-vs-host-http-port", _both(_set("hosts", "web1", "http_port", 8000),
                                          _set("acts", "storefront", "http_port", 8000)),
     "acts.storefront.http_port", "port 8000 clashes with nginx on host 'web1'"),
    ("http-port-vs-gig-port", _both(_set("gigs", "shop", "port", 9000),
                                    _set("acts", "storefront", "http_port", 9000)),
     "acts.storefront.http_port", "port 9000 clashes with nginx on host 'web1'"),
    ("two-acts-one-port", _both(_set("acts", "storefront", "http_port", 9001),
                                lambda d: d["acts"].__setitem__(
                                    "back", {**d["acts"]["storefront"], "http_port": 9001})),
     "acts.back.http_port", "port 9001 clashes with acts.storefront on host 'web1'"),
    # local files
    ("missing-source", _set("acts", "storefront", "source", "../nowhere"),
     "acts.storefront.source", "no such directory"),
    ("missing-manage", _set("acts", "storefront", "manage", "other.py"),
     "acts.storefront.manage", "no such file"),
    ("missing-source-root", _set("acts", "storefront", "source_root", "services/nope"),
     "acts.storefront.source_root", "no such directory"),
    ("source-root-dotdot", _set("acts", "storefront", "source_root", "../app"),
     "acts.storefront.source_root", "bad folder '../app'"),
    ("source-root-absolute", _set("acts", "storefront", "source_root", "/etc"),
     "acts.storefront.source_root", "bad folder"),
    ("source-root-uwsgi-magic", _set("acts", "storefront", "source_root", "s/%(x)"),
     "acts.storefront.source_root", "bad folder"),
    ("missing-pythonpath", _set("acts", "storefront", "pythonpath", ["libs"]),
     "acts.storefront.pythonpath", "no such directory"),
    ("pythonpath-dotdot", _set("acts", "storefront", "pythonpath", ["libs/../.."]),
     "acts.storefront.pythonpath.0", "bad folder"),
    ("manage-not-in-source-root", _set("acts", "storefront", "source_root", "sub"),
     "acts.storefront.manage", "no such file"),
    ("source-root-link-out", _set("acts", "storefront", "source_root", "outside"),
     "acts.storefront.source_root", "leads outside the act's source"),
    ("sqlite-migrated-by-an-act-elsewhere", _both(
        lambda d: d["hosts"].__setitem__("web2", {"roles": ["back"]}),
        lambda d: d["acts"].__setitem__("back", {**d["acts"]["storefront"], "roles": ["back"]}),
        _set("databases", "users", "migrate_with", "storefront")),
     "databases.users.migrate_with",
     "act 'storefront' does not play on host 'web2', where act 'back' uses this sqlite database"),
    ("missing-requirements", _set("venues", "shop", "requirements", "../app/nope.txt"),
     "venues.shop.requirements", "no such file"),
    ("missing-secrets", _set("acts", "storefront", "secrets", "nope.env"),
     "acts.storefront.secrets", "no such file"),
    ("missing-ssh-config", _set("ssh", {"config": "nope_config"}), "ssh.config", "no such file"),
    # environment
    ("env-reserved-prefix", _set("acts", "storefront", "env", {"BACKSTAGE_X": "1"}),
     "acts.storefront.env.BACKSTAGE_X", "'BACKSTAGE_X' is set by Backstage itself"),
    ("env-reserved-uwsgi", _set("acts", "storefront", "env", {"UWSGI_X": "1"}),
     "acts.storefront.env.UWSGI_X", "is set by Backstage itself"),
    ("env-reserved-settings", _set("acts", "storefront", "env", {"DJANGO_SETTINGS_MODULE": "x"}),
     "acts.storefront.env.DJANGO_SETTINGS_MODULE", "is set by Backstage itself"),
    ("env-bad-key", _set("acts", "storefront", "env", {"A-B": "1"}),
     "acts.storefront.env.A-B", "bad environment variable name 'A-B'"),
    ("env-value-newline", _set("acts", "storefront", "env", {"GREETING": "s3cr3t\nx"}),
     "acts.storefront.env.GREETING", "one line"),
    ("env-value-cr", _set("acts", "storefront", "env", {"GREETING": "s3cr3t\rx"}),
     "acts.storefront.env.GREETING", "one line"),
    ("env-value-nul", _set("acts", "storefront", "env", {"GREETING": "s3cr3t\0x"}),
     "acts.storefront.env.GREETING", "NUL"),
    # other shapes
    ("bad-settings", _set("acts", "storefront", "settings", "store-front.settings"),
     "acts.storefront.settings", "bad Python module path"),
    ("bad-wsgi", _set("acts", "storefront", "wsgi", "storefront.wsgi"),
     "acts.storefront.wsgi", "bad WSGI callable"),
    ("bad-layout", _set("hosts", "web1", "layout", "cloud"), "hosts.web1.layout", "'system'"),
    ("bad-root", _set("hosts", "web1", "root", "srv/x"), "hosts.web1.root", "bad path"),
    ("root-dotdot", _set("hosts", "web1", "root", "/srv/../etc"), "hosts.web1.root", "bad path"),
    ("processes-float", _set("acts", "storefront", "processes", 1.5), "acts.storefront.processes",
     "valid integer"),
    ("processes-zero", _set("acts", "storefront", "processes", 0), "acts.storefront.processes",
     "greater than or equal to 1"),
    ("no-domains", _set("gigs", "shop", "domains", []), "gigs.shop.domains", "at least 1"),
    ("bad-static", _set("gigs", "shop", "static", "static"), "gigs.shop.static", "bad URL prefix"),
    ("bad-body-size", _set("gigs", "shop", "client_max_body_size", "10 MB"),
     "gigs.shop.client_max_body_size", "bad size"),
    ("bad-log-size", _set("acts", "storefront", "log_max_size", "50MB"),
     "acts.storefront.log_max_size", "bad size"),
    ("tiny-log-size", _set("acts", "storefront", "log_max_size", "100"),
     "acts.storefront.log_max_size", "too small: at least 1k"),
    ("no-hosts", _set("hosts", {}), "hosts", "at least 1"),
    # smoke requests
    ("smoke-not-a-list", _set("acts", "storefront", "smoke", {"path": "/"}),
     "acts.storefront.smoke", "expected a list of tables"),
    ("smoke-item-not-a-table", _set("acts", "storefront", "smoke", ["/"]),
     "acts.storefront.smoke", "expected a list of tables"),
    ("smoke-no-path", _set("acts", "storefront", "smoke", [{"status": 200}]),
     "acts.storefront.smoke.0.path", "required key is missing"),
    ("smoke-bad-path", _set("acts", "storefront", "smoke", [{"path": "/", }, {"path": "home"}]),
     "acts.storefront.smoke.1.path", "bad request path 'home': it must start with '/'"),
    ("smoke-space-in-path", _set("acts", "storefront", "smoke", [{"path": "/a b"}]),
     "acts.storefront.smoke.0.path", "no spaces"),
    ("smoke-bad-status", _set("acts", "storefront", "smoke", [{"path": "/", "status": 999}]),
     "acts.storefront.smoke.0.status", "less than or equal to 599"),
    ("smoke-bad-method", _set("acts", "storefront", "smoke", [{"path": "/", "method": "POST"}]),
     "acts.storefront.smoke.0.method", "'GET' or 'HEAD'"),
    ("smoke-head-contains", _set("acts", "storefront", "smoke",
                                 [{"path": "/", "method": "HEAD", "contains": "x"}]),
     "acts.storefront.smoke.0", "'contains' needs a body"),
    ("smoke-empty-contains", _set("acts", "storefront", "smoke", [{"path": "/", "contains": ""}]),
     "acts.storefront.smoke.0.contains", "at least 1 character"),
    ("smoke-unknown-key", _set("acts", "storefront", "smoke", [{"path": "/", "bogus": 1}]),
     "acts.storefront.smoke.0.bogus", "unknown key"),
    ("bake-negative", _set("acts", "storefront", "bake", -1),
     "acts.storefront.bake", "greater than or equal to 0"),
    ("max-error-rate-over", _set("acts", "storefront", "max_error_rate", "150%"),
     "acts.storefront.max_error_rate", "bad share '150%'"),
    ("max-error-rate-word", _set("acts", "storefront", "max_error_rate", "some"),
     "acts.storefront.max_error_rate", "a percentage such as"),
    ("bake-min-errors-zero", _set("acts", "storefront", "bake_min_errors", 0),
     "acts.storefront.bake_min_errors", "greater than or equal to 1"),
]


def test_bake_settings_load_with_defaults_and_percentages(project):
    data = base_inventory()
    act = load_production(write_inventory(project, data)).acts["storefront"]
    assert (act.bake, act.max_error_rate, act.bake_min_errors) == (3.0, 0.01, 5)
    data["acts"]["storefront"].update(bake=0, max_error_rate="10%")
    act = load_production(write_inventory(project, data)).acts["storefront"]
    assert (act.bake, act.max_error_rate) == (0, 0.1)
    data["acts"]["storefront"]["max_error_rate"] = 0.02
    assert load_production(write_inventory(project, data)).acts["storefront"].max_error_rate \
        == 0.02


def test_smoke_requests_load_with_defaults(project):
    data = base_inventory()
    data["acts"]["storefront"]["smoke"] = [{"path": "/"}, {"path": "/api?x=1", "status": 404,
                                                           "contains": "Not", "method": "GET"}]
    smoke = load_production(write_inventory(project, data)).acts["storefront"].smoke
    assert [s.model_dump() for s in smoke] == [
        {"path": "/", "status": 200, "contains": None, "method": "GET"},
        {"path": "/api?x=1", "status": 404, "contains": "Not", "method": "GET"}]


@pytest.mark.parametrize(("mutate", "key", "reason"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_inventory_errors(project, mutate, key, reason):
    data = base_inventory()
    mutate(data)
    path = write_inventory(project, data)
    exc = expect_error(path)
    assert exc.key == key
    assert reason in exc.reason
    assert str(exc) == f"{path}: {exc.key}: {exc.reason}"
    assert "s3cr3t" not in str(exc)  # values never echoed for env errors


BAD_NAMES = ["Web1", "1web", "web_1", "a" * 41, "../x", "web 1", "wéb", "", "-web"]


def _rename(kind: str, bad: str):
    """Put a bad name where each kind of name lives, keeping references consistent."""
    def mutate(data):
        if kind == "host":
            data["hosts"] = {bad: data["hosts"]["web1"]}
        elif kind == "venue":
            data["venues"] = {bad: data["venues"]["shop"]}
            data["acts"]["storefront"]["venue"] = bad
        elif kind == "act":
            data["acts"] = {bad: data["acts"]["storefront"]}
            data["gigs"]["shop"]["act"] = bad
        elif kind == "gig":
            data["gigs"] = {bad: data["gigs"]["shop"]}
        elif kind == "role":
            data["hosts"]["web1"]["roles"] = [bad]
            data["acts"]["storefront"]["roles"] = [bad]
        elif kind == "database":
            data["databases"] = {bad: {}}
            data["acts"]["storefront"]["databases"] = [bad]
    return mutate


# Where the first error is reported: dict keys are checked in the model's field order
# (hosts, venues, acts, databases, gigs), so a bad database name is first met in the act.
NAME_KEYS = {
    "host": "hosts.{bad}",
    "venue": "venues.{bad}",
    "act": "acts.{bad}",
    "gig": "gigs.{bad}",
    "role": "hosts.web1.roles.0",
    "database": "acts.storefront.databases.0",
}


@pytest.mark.parametrize("bad", BAD_NAMES, ids=lambda b: repr(b)[:12])
@pytest.mark.parametrize("kind", list(NAME_KEYS))
def test_bad_names(project, kind, bad):
    data = base_inventory()
    _rename(kind, bad)(data)
    path = write_inventory(project, data)
    exc = expect_error(path)
    # A name that is not a plain word is quoted in the key, so the message stays readable.
    shown = bad if bad and bad.isprintable() and " " not in bad else repr(bad)
    assert exc.key == NAME_KEYS[kind].format(bad=shown)
    assert f"bad name {bad!r}" in exc.reason
    assert "at most 40 characters" in exc.reason


def test_bad_database_name_in_its_own_table(project):
    data = base_inventory()
    data["databases"] = {"Users": {}}
    data["acts"]["storefront"]["databases"] = []
    exc = expect_error(write_inventory(project, data))
    assert exc.key.startswith("databases.Users")
    assert "bad name 'Users'" in exc.reason


def test_bad_production_name_from_file_stem(project):
    exc = expect_error(write_inventory(project, base_inventory(), name="My_Shop"))
    assert exc.key == "production"
    assert "bad name 'My_Shop'" in exc.reason


PORT_FIELDS = [
    ("hosts", "web1", "port"),
    ("hosts", "web1", "http_port"),
    ("acts", "storefront", "http_port"),
    ("gigs", "shop", "port"),
]


@pytest.mark.parametrize(("value", "reason"), [
    (0, "greater than or equal to 1"),
    (65536, "less than or equal to 65535"),
    ("80", "valid integer"),
    (True, "valid integer"),
])
@pytest.mark.parametrize("field", PORT_FIELDS, ids=".".join)
def test_ports_out_of_range(project, field, value, reason):
    data = base_inventory()
    _set(*field, value)(data)
    exc = expect_error(write_inventory(project, data))
    assert exc.key == ".".join(field)
    assert reason in exc.reason


@pytest.mark.parametrize("domain", ["Shop.Example", "a..b", "*.*.x.test", "x.*.test", "*x.test",
                                    "x.test:80", "x.test.", "-x.test", "x y.test", "", "é.test",
                                    "a" * 64 + ".test"])
def test_bad_domains(project, domain):
    data = base_inventory()
    data["gigs"]["shop"]["domains"] = ["ok.test", domain]
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "gigs.shop.domains.1"
    assert f"bad domain {domain!r}" in exc.reason


def test_bad_health_host_domain(project):
    data = base_inventory()
    data["acts"]["storefront"]["health"] = {"host": "Shop.Test"}
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "acts.storefront.health.host"


def test_duplicate_domains_across_gigs_name_both(project):
    data = base_inventory()
    data["gigs"]["www"] = {"act": "storefront", "domains": ["www.example.test", "shop.example.test"]}
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "gigs.www.domains"
    assert "'shop.example.test'" in exc.reason
    assert "gigs.shop" in exc.reason  # the other gig
    assert "gigs.www" in str(exc)  # this gig


def test_invalid_toml(project):
    path = project / "inventories" / "shop.toml"
    path.write_text("[hosts.web1\nroles = ['web']\n")
    exc = expect_error(path)
    assert exc.key is None
    assert exc.reason.startswith("invalid TOML: ")
    assert "line 1" in exc.reason


def test_missing_inventory_file(tmp_path):
    path = tmp_path / "nope.toml"
    exc = expect_error(path)
    assert exc.key is None
    assert str(exc) == f"{path}: no such inventory file"


def test_unreadable_inventory_is_one_line(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe[hosts]\n")
    exc = expect_error(path)
    assert "cannot read" in exc.reason


def test_nul_byte_in_local_path_is_an_inventory_error(project):
    data = base_inventory()
    data["acts"]["storefront"]["source"] = "../a\0pp"
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "acts.storefront.source"


def test_unknown_user_home_in_local_path_is_an_inventory_error(project):
    data = base_inventory()
    data["venues"]["shop"]["requirements"] = "~no-such-user-backstage/requirements.txt"
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "venues.shop.requirements"


def test_newline_in_a_name_keeps_the_error_on_one_line(project):
    data = base_inventory()
    data["hosts"] = {"web\n1": {"roles": ["web"]}}
    expect_error(write_inventory(project, data))


# uWSGI's bind_to_unix() refuses socket names longer than 102 bytes ("invalid socket name");
# the kernel's own limit is 107 (sun_path).
SOCKET_NAME_MAX = 102


@pytest.mark.parametrize("where", ["long-names-system-layout", "long-root-user-layout"])
def test_socket_paths_fit_or_the_inventory_is_refused(project, where):
    data = base_inventory()
    act = "a" * 40
    data["acts"] = {act: data["acts"]["storefront"]}
    data["gigs"]["shop"]["act"] = act
    name = "p" * 40
    if where == "long-root-user-layout":
        name = "shop"
        data["hosts"]["web1"].update(layout="user", root="/home/" + "r" * 60)
    path = write_inventory(project, data, name)
    try:
        production = load_production(path)
    except InventoryError:
        return  # refused before anything connects: fine
    layout = Layout.for_host(production.name, production.hosts["web1"])
    release = "20240101T000000000Z-0123abcd"
    for socket_path in (layout.socket(act, release), layout.stats_socket(act, release)):
        assert len(socket_path.encode()) <= SOCKET_NAME_MAX, socket_path


# --- property tests: any text is either valid or an InventoryError --------------------------------

@pytest.fixture(scope="module")
def prop_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("prop"))


PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def load_or_error(root: Path, data: dict):
    path = write_inventory(root, data)
    try:
        return load_production(path), None
    except InventoryError as exc:  # anything else fails the test with its traceback
        assert str(exc).startswith(f"{path}: ")
        assert exc.reason and "\n" not in exc.reason
        return None, exc


@PROPERTY
@given(text=st.text(max_size=50) | st.from_regex(names.NAME_RE, fullmatch=True))
def test_any_host_name(prop_project, text):
    data = base_inventory()
    data["hosts"] = {text: {"roles": ["web"]}}
    production, exc = load_or_error(prop_project, data)
    valid = names.NAME_RE.fullmatch(text) is not None
    assert (production is not None) == valid
    if valid:
        assert list(production.hosts) == [text]
    else:
        assert exc.key.startswith("hosts.")


@PROPERTY
@given(text=st.text(max_size=50) | st.from_regex(names.NAME_RE, fullmatch=True))
def test_any_act_name(prop_project, text):
    data = base_inventory()
    data["acts"] = {text: data["acts"]["storefront"]}
    data["gigs"]["shop"]["act"] = text
    production, exc = load_or_error(prop_project, data)
    valid = names.NAME_RE.fullmatch(text) is not None
    assert (production is not None) == valid
    if valid:
        assert production.gigs_of(text) == ["shop"]
    else:
        assert exc.key.startswith("acts.")


@PROPERTY
@given(text=st.text(max_size=80) | st.from_regex(r"[a-z0-9.:*-]{1,30}", fullmatch=True))
def test_any_domain(prop_project, text):
    data = base_inventory()
    data["gigs"]["shop"]["domains"] = [text]
    production, exc = load_or_error(prop_project, data)
    if production is not None:
        assert text == text.lower() and text.isascii()
        assert all(label and not label.startswith("-") and not label.endswith("-")
                   for label in text.split("."))
        assert not set(text) & set(":*/ _")
    else:
        assert exc.key == "gigs.shop.domains.0"


@PROPERTY
@given(text=st.text(max_size=80))
def test_any_env_value(prop_project, text):
    data = base_inventory()
    data["acts"]["storefront"]["env"] = {"GREETING": text}
    production, exc = load_or_error(prop_project, data)
    one_line = not set(text) & {"\n", "\r", "\0"}
    assert (production is not None) == one_line
    if one_line:
        assert production.acts["storefront"].env["GREETING"] == text
    else:
        assert exc.key == "acts.storefront.env.GREETING"


# --- the console script ------------------------------------------------------------------------
# The runs start when this module's first test does (autouse), so that their interpreter
# start-up (~0.4 s each) overlaps the other tests; each CLI test then waits for its own run.

class CliRuns:
    def __init__(self, root: Path):
        bad_key = base_inventory()
        bad_key["hosts"]["web1"]["bogus"] = 1
        bad_venue = base_inventory()
        bad_venue["acts"]["storefront"]["venue"] = "nope"
        self.paths = {
            "bad": write_inventory(root, bad_key, "bad"),
            "valid": write_inventory(root, base_inventory(), "shop"),
            "dangling": write_inventory(root, bad_venue, "dangling"),
        }
        commands = {
            "check-bad": ["check", "--inventory", str(self.paths["bad"])],
            "check-valid": ["check", "--inventory", str(self.paths["valid"])],
            "deploy-dangling": ["deploy-act", "storefront", "--inventory",
                                str(self.paths["dangling"])],
        }
        env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}
        self.running = {
            name: subprocess.Popen([str(BACKSTAGE), *args], cwd=root, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name, args in commands.items()
        }

    def result(self, name):
        process = self.running[name]
        out, err = process.communicate(timeout=60)
        return process.returncode, out, err

    def close(self):
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture(scope="module", autouse=True)
def cli(tmp_path_factory):
    runs = CliRuns(make_project(tmp_path_factory.mktemp("cli")))
    yield runs
    runs.close()


def test_cli_check_bad_inventory_is_one_line_exit_2(cli):
    code, out, err = cli.result("check-bad")
    assert code == 2
    assert err == f"backstage: error: {cli.paths['bad']}: hosts.web1.bogus: unknown key\n"
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("settings", "storefront.prod", "acts.storefront.settings: no module storefront.prod in "),
    ("wsgi", "storefront.wsgi:application", "acts.storefront.wsgi: no module storefront.wsgi in "),
])
def test_cli_check_refuses_a_module_not_in_the_tree_in_one_line(project, key, value, reason):
    data = base_inventory()
    data["acts"]["storefront"][key] = value
    path = write_inventory(project, data)
    done = subprocess.run([str(BACKSTAGE), "check", "--inventory", str(path)], cwd=project,
                          text=True, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"backstage: error: {path}: {reason}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cli_check_valid_inventory(cli):
    code, out, err = cli.result("check-valid")
    assert code == 0, err
    assert "production 'shop' is valid: 1 hosts, 1 venues, 1 acts, 1 gigs" in out
    assert err == ""


def test_cli_deploy_act_bad_inventory_exits_2_before_connecting(cli):
    code, _out, err = cli.result("deploy-dangling")
    assert code == 2
    assert err == (f"backstage: error: {cli.paths['dangling']}: acts.storefront.venue: "
                   "unknown venue 'nope' (known: shop)\n")


# --- the secrets file ----------------------------------------------------------------------------

def test_read_env_file(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text(
        "# a comment\n"
        "\n"
        "   \n"
        "  # an indented comment\n"
        "DJANGO_SECRET_KEY=abc=def#not-a-comment\n"
        "export EXPORTED=yes\n"
        "EMPTY=\n"
        "SPACED=  two words  \n"
        "LAST=no-newline"
    )
    assert read_env_file(path) == {
        "DJANGO_SECRET_KEY": "abc=def#not-a-comment",
        "EXPORTED": "yes",
        "EMPTY": "",
        "SPACED": "  two words  ",
        "LAST": "no-newline",
    }


@pytest.mark.parametrize(("line", "reason"), [
    ("1BAD=hunter2-secret", "bad environment variable name '1BAD'"),
    ("BACKSTAGE_PRODUCTION=hunter2-secret", "set by Backstage itself"),
    ("hunter2-secret", "expected KEY=value"),
])
def test_read_env_file_rejects_bad_lines_without_echoing_the_value(tmp_path, line, reason):
    path = tmp_path / "secrets.env"
    path.write_text(f"# header\nGOOD=1\n\n{line}\nOTHER=2\n")
    with pytest.raises(InventoryError) as info:
        read_env_file(path)
    exc = info.value
    assert exc.key == "line 4"
    assert reason in exc.reason
    assert str(exc).startswith(f"{path}: line 4: ")
    assert "hunter2" not in str(exc)
    assert "\n" not in str(exc)


def test_read_env_file_missing(tmp_path):
    with pytest.raises(InventoryError) as info:
        read_env_file(tmp_path / "nope.env")
    assert "cannot read" in str(info.value)


def test_read_env_file_splits_at_newlines_only(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("A=foo\u2028B=bar\nC=x\x0cD=y\n", encoding="utf-8")
    assert read_env_file(path) == {"A": "foo\u2028B=bar", "C": "x\x0cD=y"}


# --- act users (system layout) ------------------------------------------------------------------

def test_act_user_defaults_to_production_and_act_and_stays_within_32_characters(project):
    production = load_production(write_inventory(project, base_inventory()))
    assert production.act_user("storefront") == "bs-shop-storefront"
    assert production.group == "bs-shop"
    long_name = "p" * 25  # bs-<name>-storefront would be 39 characters
    production = load_production(write_inventory(project, base_inventory(), long_name))
    user = production.act_user("storefront")
    assert len(user) == 32 and user.startswith("bs-" + "p" * 22 + "-")
    assert production.group == "bs-" + long_name


@pytest.mark.parametrize("user, reason", [
    ("root", "is a system account"),
    ("www-data", "is a system account"),
    ("Shop", "bad user name"),
    ("a" * 33, "bad user name"),
    ("x;id", "bad user name"),
    ("deploy", "an act needs a user of its own"),  # the SSH user
])
def test_bad_act_users_are_refused(project, user, reason):
    data = base_inventory()
    data["hosts"]["web1"]["user"] = "deploy"
    data["acts"]["storefront"]["user"] = user
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "acts.storefront.user" and reason in exc.reason


def test_a_sqlite_database_shared_by_acts_of_two_users_on_one_host_is_refused(project):
    data = base_inventory()
    data["acts"]["back"] = {**data["acts"]["storefront"], "http_port": None}
    del data["acts"]["back"]["http_port"]
    exc = expect_error(write_inventory(project, data))
    assert exc.key.startswith("databases.") and "give them the same 'user'" in exc.reason
    data["acts"]["back"]["user"] = data["acts"]["storefront"]["user"] = "shop-web"
    assert load_production(write_inventory(project, data)).act_user("back") == "shop-web"


def test_become_is_for_the_system_layout(project):
    data = base_inventory()
    data["hosts"]["web1"].update(layout="user", root="/home/deploy/b", become="sudo")
    assert expect_error(write_inventory(project, data)).key == "hosts.web1.become"
    data["hosts"]["web1"].update(become="doas")
    assert expect_error(write_inventory(project, data)).key == "hosts.web1.become"


def test_a_service_in_a_monorepo(project):
    repo = project / "app"
    for folder in ("services/shop/shop", "libs/greetings"):
        (repo / folder).mkdir(parents=True)
    (repo / "services" / "shop" / "manage.py").write_text("")
    data = base_inventory()
    data["acts"]["storefront"].update(source_root="services/shop", pythonpath=["libs"],
                                      settings="shop.settings")
    act = load_production(write_inventory(project, data)).acts["storefront"]
    assert act.source == repo.resolve()
    assert act.manage_path == "services/shop/manage.py"
    assert act.import_path == ("services/shop", "libs")
    assert act.wsgi_callable is None  # Django's WSGI_APPLICATION


# --- [defaults.acts] ----------------------------------------------------------------------------

def with_defaults(defaults: dict, **acts) -> dict:
    data = base_inventory()
    data["defaults"] = {"acts": defaults}
    data["acts"] = acts
    data["gigs"] = {}
    return data


def test_acts_inherit_the_defaults_and_their_own_keys_win(project):
    data = with_defaults(
        {"venue": "shop", "source": "../app", "settings": "storefront.settings",
         "env": {"A": "1", "B": "2"}, "health": {"timeout": 9.0},
         "processes": 3},
        web={"env": {"B": "web"}, "health": {"path": "/ping"}},
        api={"processes": 5, "settings_overlay": False})
    production = load_production(write_inventory(project, data))
    web, api = production.acts["web"], production.acts["api"]
    assert web.venue == api.venue == "shop"
    assert web.source == api.source == (project / "app").resolve()  # relative to the inventory
    assert web.env == {"A": "1", "B": "web"} and api.env == {"A": "1", "B": "2"}
    assert (web.health.path, web.health.timeout) == ("/ping", 9.0)
    assert (web.processes, api.processes) == (3, 5)
    assert web.settings_overlay and not api.settings_overlay


@pytest.mark.parametrize(("defaults", "key", "reason"), [
    ({"bogus": 1}, "defaults.acts.bogus", "unknown key"),
    ({"procesess": 1}, "defaults.acts.procesess", "did you mean 'processes'"),
    ({"processes": 0}, "defaults.acts.processes", "greater than or equal to 1"),
])
def test_a_bad_default_is_named_where_it_is_written(project, defaults, key, reason):
    data = with_defaults({"venue": "shop", "source": "../app", "settings": "storefront.settings",
                          **defaults}, web={})
    exc = expect_error(write_inventory(project, data))
    assert exc.key == key and reason in str(exc), str(exc)


def test_only_act_defaults_are_known(project):
    data = base_inventory()
    data["defaults"] = {"hosts": {"python": "python3"}}
    exc = expect_error(write_inventory(project, data))
    assert exc.key == "defaults" and "only a [defaults.acts] table" in str(exc)


def test_an_acts_own_bad_value_is_named_under_the_act(project):
    data = with_defaults({"venue": "shop", "source": "../app", "settings": "storefront.settings",
                          "processes": 2}, web={"processes": 0})
    assert expect_error(write_inventory(project, data)).key == "acts.web.processes"


# --- needs ----------------------------------------------------------------------------------

def test_a_deploy_of_several_acts_switches_the_needed_ones_first(project):
    data = with_defaults({"venue": "shop", "source": "../app", "settings": "storefront.settings"},
                         front={"needs": ["users", "welcome"]}, users={},
                         welcome={"needs": ["users"]}, other={})
    production = load_production(write_inventory(project, data))
    assert production.deploy_order(list(production.acts)) == ["users", "welcome", "front",
                                                              "other"]
    # Only the acts named are deployed: a need outside them orders nothing.
    assert production.deploy_order(["front", "welcome"]) == ["welcome", "front"]


@pytest.mark.parametrize(("acts", "key", "reason"), [
    ({"a": {"needs": ["b"]}, "b": {"needs": ["a"]}}, "acts.a.needs", "a cycle: a -> b -> a"),
    ({"a": {"needs": ["a"]}}, "acts.a.needs", "a cycle: a -> a"),
    ({"a": {"needs": ["c"]}, "b": {}}, "acts.a.needs", "unknown act 'c'"),
])
def test_a_bad_need_is_one_line(project, acts, key, reason):
    data = with_defaults({"venue": "shop", "source": "../app", "settings": "storefront.settings"},
                         **acts)
    exc = expect_error(write_inventory(project, data))
    assert exc.key == key and reason in str(exc), str(exc)


def test_lock_timeout_is_the_acts_else_the_productions(project):
    data = base_inventory()
    assert load_production(write_inventory(project, data)).lock_timeout_of("storefront") == 300
    data["lock_timeout"] = 60
    assert load_production(write_inventory(project, data)).lock_timeout_of("storefront") == 60
    data["acts"]["storefront"]["lock_timeout"] = 20
    assert load_production(write_inventory(project, data)).lock_timeout_of("storefront") == 20
    data["acts"]["storefront"]["lock_timeout"] = 1
    assert expect_error(write_inventory(project, data)).key == "acts.storefront.lock_timeout"
