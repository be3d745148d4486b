"""Hostile input: whatever an inventory holds, Backstage either refuses it with one
InventoryError (exit 2, before any host is contacted) or carries it safely.

Safely means: every path stays under the production's root (gig files under nginx's sites
directory) with no ``..``; every remote command is well-formed shell whose values are quoted
(``bash -n``, and for the builders that carry free text, real runs that never trip a canary);
rendered nginx and uWSGI files keep the shape of the template (no injected directive); and
the env file holds one line per variable. tests/fleet/test_hostile_input.py proves the same
end to end on a host.
"""

import copy
import importlib
import json
import os
import posixpath
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backstage.artefacts.bundle import Upload
from backstage.commands import gig as gig_cmd
from backstage.commands import history, hostside_if_installed, lock, privileges
from backstage.commands import release as release_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.commands.stage import Services
from backstage.errors import InventoryError
from backstage.facts.observed import host_locks, probe_spec
from backstage.model import Layout, Production, RunAs, load_production
from backstage.operations.deploy import deploy_locks
from backstage.render import Renderer
from backstage.transport.local import LocalTransport
from tests.test_inventory import base_inventory, dump_toml, make_project

# A file that only an injected command would create (on the workstation or a host).
CANARY = f"/tmp/backstage-canary-{os.getpid()}"
RELEASE = "20260101T000000000Z-0123abcd"
DIGEST = "0123456789abcdef"

INJECTIONS = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f"; touch {CANARY}", f"'; touch {CANARY}; '",
    f'"; touch {CANARY}; "', f"| touch {CANARY}", f"&& touch {CANARY} &&", f"\ntouch {CANARY}\n",
    f"$(touch${{IFS}}{CANARY})", f"@(exec://touch {CANARY})", "%(_)", "%d", "$(HOME)", "${PATH}",
    "..", "../..", "/..", "/../../etc", "/etc/passwd", "/", "//", "./", "~root", "-rf", "--help",
    "\0", "\r", "\n", "\r\n", "\t", " ", "é", "Ω", "\u202e", "\u0430", "\ufeff", "\U0001f3ad",
    "x" * 300, "a" * 5000, "{", "}", ";", "#", "\\", "\\n", "*", "include /etc/passwd;",
]
META = list(";|&$()`\"'<>*?~#!{}[]\\")
PIECE = st.one_of(
    st.sampled_from(INJECTIONS),
    st.sampled_from(META),
    st.text(max_size=8),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    st.sampled_from(["shop", "storefront", "/srv/backstage", "static", "/static/", ".py", "."]),
)
HOSTILE = st.lists(PIECE, min_size=1, max_size=5).map("".join)


# --- where a hostile value can go: (mutation with a value, a value the slot accepts) ------------

def _rename(table: str, old: str, also=None):
    def mutate(data, text):
        data[table] = {(text if k == old else k): v for k, v in data[table].items()}
        if also:
            also(data, text)
    return mutate


def _set(*path):
    def mutate(data, text):
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = text
    return mutate


def _tls(key):
    def mutate(data, text):
        data["gigs"]["shop"].update(tls_certificate="/etc/ssl/s.crt", tls_key="/etc/ssl/s.key")
        data["gigs"]["shop"][key] = text
    return mutate


def _secret(data, text, root: Path):
    path = root / "secrets.env"
    path.write_text(f"API_TOKEN={text}\n", encoding="utf-8", newline="")
    data["acts"]["storefront"]["secrets"] = "../secrets.env"


def _role(data, text):
    data["hosts"]["web1"]["roles"] = [text]
    data["acts"]["storefront"]["roles"] = [text]


def _database(data, text):
    data["databases"] = {text: {}}
    data["acts"]["storefront"]["databases"] = [text]


SLOTS = {
    "production": (_set("production"), "shop"),
    "host name": (_rename("hosts", "web1"), "web1"),
    "role": (_role, "web"),
    "venue name": (_rename("venues", "shop",
                           lambda d, t: d["acts"]["storefront"].update(venue=t)), "shop"),
    "act name": (_rename("acts", "storefront",
                         lambda d, t: d["gigs"]["shop"].update(act=t)), "storefront"),
    "gig name": (_rename("gigs", "shop"), "shop"),
    "database name": (_database, "users"),
    "database file": (_set("databases", "users", "name"), "users.sqlite3"),
    "domain": (_set("gigs", "shop", "domains", 0), "shop.example.test"),
    "health host": (lambda d, t: d["acts"]["storefront"].update(health={"host": t}),
                    "health.example.test"),
    "health path": (lambda d, t: d["acts"]["storefront"].update(health={"path": t}), "/healthz"),
    "env key": (lambda d, t: d["acts"]["storefront"].update(env={t: "x"}), "GREETING"),
    "env value": (lambda d, t: d["acts"]["storefront"].update(env={"GREETING": t}), "hello"),
    "secret value": (None, "s3cret"),  # written to the secrets file (see _secret)
    "host address": (_set("hosts", "web1", "address"), "web1.example.test"),
    "host user": (_set("hosts", "web1", "user"), "deploy"),
    "host root": (_set("hosts", "web1", "root"), "/srv/stages"),
    "host python": (_set("hosts", "web1", "python"), "/usr/bin/python3"),
    "nginx group": (_set("hosts", "web1", "nginx_group"), "www-data"),
    "venue python": (_set("venues", "shop", "python"), "python3"),
    "settings": (_set("acts", "storefront", "settings"), "storefront.settings"),
    "wsgi": (_set("acts", "storefront", "wsgi"), "storefront.wsgi:application"),
    "manage": (_set("acts", "storefront", "manage"), "manage.py"),
    "source root": (_set("acts", "storefront", "source_root"), "."),
    "pythonpath": (lambda d, t: d["acts"]["storefront"].update(pythonpath=[t]), "."),
    "static": (_set("gigs", "shop", "static"), "/assets/"),
    "media": (_set("gigs", "shop", "media"), "/uploads/"),
    "body size": (_set("gigs", "shop", "client_max_body_size"), "20m"),
    "tls certificate": (_tls("tls_certificate"), "/etc/ssl/s.crt"),
    "tls key": (_tls("tls_key"), "/etc/ssl/s.key"),
}


def inventory_with(root: Path, slot: str, text: str, name: str = "shop") -> Path:
    data = base_inventory()
    mutate, _ = SLOTS[slot]
    if mutate is None:
        _secret(data, text, root)
    else:
        mutate(data, text)
    path = root / "inventories" / f"{name}.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    return path


def load_or_refuse(path: Path) -> Production | None:
    """The property's first half: a Production, or one InventoryError; anything else fails."""
    try:
        return load_production(path)
    except InventoryError as exc:
        message = str(exc)
        # The file at fault: the inventory, or the secrets file it names.
        assert message.startswith((f"{path}: ", f"{path.parent.parent}/secrets.env: ")), message
        assert "\n" not in message and "\r" not in message and "\0" not in message
        assert exc.exit_code == 2
        return None


# --- what a loaded production turns into -----------------------------------------------------------

def layout_paths(production: Production, host: str) -> tuple[Layout, list[str], list[str]]:
    """Every path a layout gives for this production on this host: (layout, under root, gigs)."""
    layout = Layout.for_host(production.name, production.hosts[host])
    paths = [layout.root, *layout.directories, layout.stage_venv, layout.uwsgi, layout.emperor_ini,
             layout.emperor_pidfile, layout.emperor_stats, layout.history, layout.run,
             layout.vassals, layout.log]
    for venue in production.venues:
        paths += [layout.venue_dir(venue, DIGEST), layout.venue_link(venue),
                  layout.venue_lock(venue)]
    for name in host_locks(production, host):
        paths += [layout.lock_dir(name), layout.lock_info(name)]
    for act_name, act in production.acts.items():
        paths += [layout.act_dir(act_name), layout.releases(act_name),
                  layout.release(act_name, RELEASE), layout.current(act_name),
                  layout.shared(act_name), layout.env_file(act_name, RELEASE), layout.media(act_name),
                  layout.static(act_name, RELEASE), layout.current_static(act_name),
                  layout.good_list(act_name), layout.bad_list(act_name), layout.act_log(act_name),
                  layout.vassal(act_name, RELEASE), layout.socket(act_name, RELEASE),
                  layout.stable_socket(act_name), layout.stats_socket(act_name, RELEASE),
                  # what manage.py runs as, inside the release
                  layout.in_release(act_name, RELEASE, act.manage_path),
                  *(layout.in_release(act_name, RELEASE, p) for p in act.import_path)]
    for name, database in production.databases.items():
        paths.append(posixpath.join(layout.data, database.file_name(name)))
    gigs = [layout.gig_conf(g) for g in production.gigs]
    return layout, paths, gigs


def assert_inside(path: str, top: str) -> None:
    assert path.startswith("/"), path
    assert ".." not in path.split("/"), path
    assert "\0" not in path and "\n" not in path, path
    normal, top = posixpath.normpath(path), posixpath.normpath(top)
    assert normal == top or normal.startswith(top.rstrip("/") + "/"), (path, top)


def deploy_scripts(production: Production, host: str, layout: Layout) -> list[Script]:
    """The command texts of a deploy (and its neighbours), built with the production's values."""
    renderer = renderer_for(production)
    python = production.hosts[host].python
    scripts = []
    for act_name, act in production.acts.items():
        venue_dir = layout.venue_dir(act.venue, DIGEST)
        locks = deploy_locks(production, act_name)
        script = lock.acquire(Script(), layout, locks, {"by": "me", "act": act_name, "token": "t"})
        run_as = RunAs(production.act_user(act_name), production.act_user(act_name),
                       production.hosts[host].nginx_group)
        upload = Upload("d" * 64, base="b" * 64, removed=("a b", "$(touch CANARY)", "-rf"))
        release_cmd.unpack_release(script, layout, python, act_name, RELEASE, 123, upload)
        privileges.own_act_state(script, layout, python, act_name, RELEASE, run_as,
                                 production.group,
                                 [f"{layout.data}/{d}.sqlite3" for d in act.logical_databases])
        release_cmd.write_settings_modules(script, layout, act_name, RELEASE,
                                           renderer.settings_modules(act_name))
        release_cmd.prepare_release(script, layout, act_name, RELEASE,
                                    release_cmd.Manage.of(production, act_name, layout, RELEASE,
                                                          venue_dir),
                                    act.database_aliases, run_as=run_as)
        scripts.append(script)
        script = Script()
        sess_cmd.start_vassal(script, layout, act_name, RELEASE,
                              renderer.vassal(layout, act_name, RELEASE, venue_dir, run_as))
        sess_cmd.health_check(script, layout, python, act_name, RELEASE,
                              {"host": act.health.host or "localhost", "path": act.health.path or "/",
                               "status": act.health.expected, "timeout": act.health.timeout,
                               "retries": act.health.retries})
        sess_cmd.switch(script, layout, act_name, RELEASE)
        sess_cmd.retire(script, layout, act_name, ["20250101T000000000Z-aaaaaaaa"])
        # A repair's and a cleanup's builders.
        sess_cmd.enable_vassal(script, layout, act_name, RELEASE,
                               renderer.vassal(layout, act_name, RELEASE, venue_dir, run_as))
        sess_cmd.relink(script, layout, act_name, RELEASE)
        history.trim(script, layout)
        gigs = {layout.gig_conf(g): renderer.gig(layout, g) for g in production.gigs_of(act_name)}
        gig_cmd.install_gigs(script, layout, gigs, [], Services())
        history.append(script, layout, {"event": "deploy", "act": act_name, "release": RELEASE,
                                        "env": dict(act.env), "by": "me"})
        lock.release(script, layout, locks, "t")
        scripts.append(script)
    return scripts


def assert_valid_shell(text: str) -> None:
    assert "\0" not in text
    done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, (done.stderr, text[:2000])


def assert_well_formed(*scripts: Script) -> None:
    """Each script is one quoted word after ``bash -c``, and it and its lines parse."""
    texts = []
    for script in scripts:
        outer, inner = script.text(), "\n".join(script.lines)
        assert shlex.split(outer) == ["bash", "-c", inner]
        texts += [outer, inner]
    assert_valid_shell("\n".join(texts))  # one bash for all: an unbalanced quote still fails


_RENDERERS: dict[Path, Renderer] = {}


def renderer_for(production: Production) -> Renderer:
    """A Renderer sharing one compiled-template cache per project (compiling is the slow part)."""
    folder = production.path.parent
    if folder not in _RENDERERS:
        _RENDERERS[folder] = Renderer(production)
    renderer = copy.copy(_RENDERERS[folder])
    renderer.production = production
    return renderer


def directives(text: str) -> list[str]:
    """The shape of a config file: the first word of each non-comment line."""
    return [line.split()[0] for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", ";"))]


def act_environment():
    """The function that builds an act's env file (it lives in the operations layer)."""
    for module in ("backstage.operations.deploy",):
        function = getattr(importlib.import_module(module), "act_environment", None)
        if function is not None:
            return function
    raise AssertionError("act_environment not found")


def check_loaded(production: Production, baseline: Production) -> None:
    """The property's second half, for a production that loaded."""
    for host in production.hosts:
        layout, paths, gig_paths = layout_paths(production, host)
        assert_inside(layout.root, layout.base)
        for path in paths:
            assert_inside(path, layout.root)
        for path in gig_paths:
            assert_inside(path, layout.nginx_sites)
            assert posixpath.dirname(path) == layout.nginx_sites
        assert_well_formed(*deploy_scripts(production, host, layout),
                           Script().raw(hostside_if_installed(
                               layout, "python3", "probe", probe_spec(production, host, layout))))
        renderer = renderer_for(production)
        base_layout = Layout.for_host(baseline.name, next(iter(baseline.hosts.values())))
        base_renderer = renderer_for(baseline)
        for gig, base_gig in zip(production.gigs, baseline.gigs, strict=True):
            assert directives(renderer.gig(layout, gig)) == \
                directives(base_renderer.gig(base_layout, base_gig))
        for act, base_act in zip(production.acts, baseline.acts, strict=True):
            ini = renderer.vassal(layout, act, RELEASE, layout.venue_dir("v", DIGEST))
            # The same kinds of directive (an act's import path may take one line more than
            # the baseline's, whose only entry is the project's root).
            assert set(directives(ini)) == set(directives(
                base_renderer.vassal(base_layout, base_act, RELEASE, "/v")))
            # uWSGI expands these in option values: nothing from the inventory may add one.
            assert not re.search(r"[$@]\(", ini), ini
            env = act_environment()(production, act, layout)
            lines = env.split("\n")
            assert lines[-1] == "" and all("=" in line for line in lines[:-1]), env
            keys = [line.partition("=")[0] for line in lines[:-1]]
            assert len(keys) == len(set(keys))
            values = dict(line.partition("=")[::2] for line in lines[:-1])
            for key, value in production.acts[act].env.items():
                assert values[key] == value


# --- the property -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("hostile"))


class Baselines:
    """Per slot, the production with the slot's ordinary value: the shape to compare with."""

    def __init__(self, root: Path):
        self.root, self.cache = root, {}

    def __getitem__(self, slot: str) -> Production:
        if slot not in self.cache:
            path = inventory_with(self.root, slot, SLOTS[slot][1], "baseline")
            self.cache[slot] = load_production(path)
        return self.cache[slot]

    def __repr__(self):
        return "baselines"


@pytest.fixture(scope="module")
def baselines(hostile_project) -> Baselines:
    return Baselines(hostile_project)


@pytest.fixture(scope="module", autouse=True)
def no_canary():
    Path(CANARY).unlink(missing_ok=True)
    yield
    assert not Path(CANARY).exists(), f"an injected command ran: {CANARY} exists"


PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.mark.parametrize("slot", list(SLOTS))
@PROPERTY
@given(text=HOSTILE)
def test_hostile_value_is_refused_or_carried_safely(hostile_project, baselines, slot, text):
    production = load_or_refuse(inventory_with(hostile_project, slot, text))
    if production is not None:
        check_loaded(production, baselines[slot])
    assert not Path(CANARY).exists()


# Values that must load (they are free text by design) and still never run anything.
FREE_TEXT = [f"$(touch {CANARY})", f"`touch {CANARY}`", f"'; touch {CANARY}; '",
             f"@(exec://touch {CANARY})", "$(HOME) ${PATH} %(_) %d {{ x }} \\ é \U0001f3ad"]


@pytest.mark.parametrize("slot", ["env value", "secret value"])
@pytest.mark.parametrize("text", FREE_TEXT, ids=range(len(FREE_TEXT)))
def test_free_text_values_load_and_stay_quoted(hostile_project, baselines, slot, text):
    production = load_or_refuse(inventory_with(hostile_project, slot, text))
    assert production is not None
    check_loaded(production, baselines[slot])


# --- specific classes, named ------------------------------------------------------------------------

@pytest.mark.parametrize(("slot", "text"), [
    ("act name", "../etc"), ("act name", "a/../../b"), ("gig name", ".."),
    ("production", "../../etc"), ("host root", "/srv/../etc"), ("host root", "srv/backstage"),
    ("database file", "../../etc/passwd"), ("database file", "/etc/passwd"),
    ("static", "/static/../../"), ("media", "/../"), ("manage", "/etc/passwd.py"),
    ("manage", "../manage.py"), ("tls key", "/etc/ssl/../../root/key"),
    ("venue python", "../../bin/python"), ("host python", "/usr/bin/../../tmp/python"),
])
def test_dotdot_and_absolute_paths_are_refused(hostile_project, slot, text):
    assert load_or_refuse(inventory_with(hostile_project, slot, text)) is None


def test_manage_cannot_climb_out_of_the_release(hostile_project):
    """A manage path through '..' would run a file outside the release, even if it exists."""
    (hostile_project / "app" / "sub").mkdir(exist_ok=True)
    (hostile_project / "evil.py").write_text("")
    for manage in ("sub/../../evil.py", "sub/../manage.py"):
        assert (hostile_project / "app" / manage).is_file()
        assert load_or_refuse(inventory_with(hostile_project, "manage", manage)) is None


@pytest.mark.parametrize(("slot", "text"), [
    ("domain", "shop.test;include /etc/passwd"), ("domain", "shop.test }"),
    ("domain", "shop.test\nlisten 81"), ("body size", "10m; autoindex on"),
    ("static", "/static/ { autoindex on; } location /x/"), ("tls certificate", "/etc/a.crt;"),
    ("health host", "a b"), ("settings", "x;import os"), ("wsgi", "app:x\nmodule = evil"),
    ("host address", "h1 -oProxyCommand=touch"), ("host user", "root;id"),
    ("nginx group", "www-data\nuid = root"), ("env key", "A;B"), ("env key", "PATH"),
    ("env value", "a\nBACKSTAGE_ACT=evil"), ("env value", "a\rb"), ("env value", "a\0b"),
    ("secret value", "a\0b"), ("secret value", "x\nDJANGO_SETTINGS_MODULE=evil"),
    ("production", "shop;rm"), ("host name", "h1\nh2"), ("role", "web$(id)"),
    ("database name", "users'"), ("venue name", "Shop"), ("gig name", "shop\u0430"),
])
def test_metacharacters_newlines_and_unicode_are_refused(hostile_project, slot, text):
    assert load_or_refuse(inventory_with(hostile_project, slot, text)) is None


def test_very_long_values_are_refused_or_fit(hostile_project, baselines):
    for slot in ("act name", "domain", "host root", "env value", "health path", "static"):
        production = load_or_refuse(inventory_with(hostile_project, slot, "a" * 100_000))
        if production is not None:
            check_loaded(production, baselines[slot])


# --- the builders that carry free text, run for real ---------------------------------------------

CONTENT = st.lists(st.one_of(st.sampled_from(INJECTIONS), st.sampled_from(META),
                             st.text(max_size=20)), max_size=8).map("".join).map(
                                 lambda s: s.replace("\0", ""))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=CONTENT)
@example(content=f"$(touch {CANARY})`touch {CANARY}`'; touch {CANARY}; '\n$(HOME)")
def test_write_file_history_and_lock_run_without_injection(tmp_path_factory, content):
    base = tmp_path_factory.mktemp("run")
    layout = Layout("shop", "user", str(base), 8080)
    Path(layout.root, "state").mkdir(parents=True)
    target = f"{layout.root}/file"
    script = Script().write_file(target, content, mode="600")
    record = {"event": "lock", "message": content, "by": content}
    history.append(script, layout, record)
    lock.acquire(script, layout, ["act/a", "database/b"], {"by": content, "token": "abc"})
    result = LocalTransport().run(script.text())
    assert result.ok, result.stderr
    assert not Path(CANARY).exists()
    assert Path(target).read_bytes().decode("utf-8") == content
    assert oct(Path(target).stat().st_mode & 0o777) == "0o600"
    lines = Path(layout.history).read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [{k: v for k, v in e.items() if k != "time"} for e in entries] == [record]
    for name in ("act/a", "database/b"):
        assert json.loads(Path(layout.lock_info(name)).read_text())["by"] == content

