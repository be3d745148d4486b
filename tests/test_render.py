"""The render layer: vassal ini, gig server block, nginx.conf, Emperor files, template overrides."""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from backstage.commands.stage import Services, nginx_command
from backstage.model import Layout, RunAs, load_production
from backstage.render import LISTEN_BACKLOG, Renderer
from tests.test_inventory import base_inventory, dump_toml, make_project, write_inventory

RELEASE = "20240102T030405Z-0123abcd"
VENUE_DIR = "/srv/backstage/shop/venues/shop-abcdef"


def short_dir() -> str:
    """A real, short directory: uWSGI's socket paths under it must stay below 102 bytes."""
    return tempfile.mkdtemp(prefix="bs-", dir="/tmp")


def load(root: Path, data: dict, name: str = "shop"):
    return load_production(write_inventory(root, data, name))


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path)


def ini_pairs(text: str) -> list[tuple[str, str]]:
    """``key = value`` lines of an ini, in order, comments and sections left out."""
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith((";", "#", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key = value line: {line!r}"
        pairs.append((key.strip(), value.strip()))
    return pairs


def ini_one(pairs, key) -> str:
    values = [v for k, v in pairs if k == key]
    assert len(values) == 1, (key, values)
    return values[0]


def assert_fully_rendered(text: str):
    assert "{{" not in text and "{%" not in text
    assert "None" not in text


# --- the vassal ---------------------------------------------------------------------------------

def test_vassal_system_layout(project):
    data = base_inventory()
    data["acts"]["storefront"]["processes"] = 3
    data["acts"]["storefront"]["threads"] = 4
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    text = Renderer(production).vassal(layout, "storefront", RELEASE, VENUE_DIR)
    assert_fully_rendered(text)
    pairs = ini_pairs(text)

    for flag in ("strict", "master", "need-app", "die-on-term", "vacuum", "single-interpreter",
                 "enable-threads"):
        assert ini_one(pairs, flag) == "true", flag
    assert ini_one(pairs, "listen") == "1024" == str(LISTEN_BACKLOG)
    assert int(ini_one(pairs, "harakiri")) > 0
    assert int(ini_one(pairs, "max-requests")) > int(ini_one(pairs, "max-requests-delta")) > 0
    assert ini_one(pairs, "processes") == "3"
    assert ini_one(pairs, "threads") == "4"

    root = "/srv/backstage/shop"
    assert ini_one(pairs, "socket") == f"{root}/run/storefront/{RELEASE}.sock"
    assert ini_one(pairs, "virtualenv") == VENUE_DIR
    # The project's root in the release, as Django projects expect it.
    assert ini_one(pairs, "chdir") == f"{root}/acts/storefront/releases/{RELEASE}"
    # The project first, then Backstage's settings module.
    assert [v for k, v in pairs if k == "pythonpath"] == [
        f"{root}/acts/storefront/releases/{RELEASE}",
        f"{root}/acts/storefront/releases/{RELEASE}/.backstage-settings"]
    assert ini_one(pairs, "stats") == f"{root}/run/storefront.stats/{RELEASE}"
    assert ini_one(pairs, "logto") == f"{root}/log/storefront.log"

    envs = [v for k, v in pairs if k == "env"]
    assert "DJANGO_SETTINGS_MODULE=backstage_settings" in envs
    assert "BACKSTAGE_SETTINGS=storefront.settings" in envs
    assert f"BACKSTAGE_RELEASE={RELEASE}" in envs
    assert f"BACKSTAGE_STATIC_ROOT={root}/acts/storefront/releases/{RELEASE}/.backstage-static" in envs
    # Python reads the release's env file (uWSGI's config logic would expand $(...) and
    # @(exec://...) in its values), then imports the WSGI callable.
    keys = [k for k, _ in pairs]
    assert "for-readline" not in keys and "module" not in keys
    code = ini_one(pairs, "eval")
    assert f'open("{root}/acts/storefront/env/env-{RELEASE}", encoding="utf-8")' in code
    assert '.read().split("\\n")' in code
    # No wsgi in the inventory: the callable Django's WSGI_APPLICATION names.
    assert code.endswith("from django.core.servers.basehttp import "
                         "get_internal_wsgi_application; application = "
                         "get_internal_wsgi_application()")
    data["acts"]["storefront"]["wsgi"] = "storefront.wsgi:application"
    text = Renderer(load(project, data)).vassal(layout, "storefront", RELEASE, VENUE_DIR)
    assert ini_one(ini_pairs(text), "eval").endswith(
        'getattr(importlib.import_module("storefront.wsgi"), "application")')

    assert "http-socket" not in keys and "reuse-port" not in keys
    for key in ("chown-socket", "uid", "gid", "umask"):
        assert key not in keys, key
    assert "daemonize" not in keys  # the Emperor supervises it


def test_vassal_http_port_and_act_user(project):
    data = base_inventory()
    data["acts"]["storefront"]["http_port"] = 9001
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    run_as = RunAs("bs-shop-storefront", "bs-shop-storefront", "www-data")
    pairs = ini_pairs(Renderer(production).vassal(layout, "storefront", RELEASE, VENUE_DIR,
                                                  run_as))
    assert ini_one(pairs, "http-socket") == "127.0.0.1:9001"
    assert ini_one(pairs, "reuse-port") == "true"
    assert ini_one(pairs, "uid") == "bs-shop-storefront"
    assert ini_one(pairs, "gid") == "bs-shop-storefront"
    assert ini_one(pairs, "umask") == "027"
    assert ini_one(pairs, "chown-socket") == "bs-shop-storefront:www-data"
    assert ini_one(pairs, "chmod-socket") == "660"
    keys = [k for k, _ in pairs]
    # uWSGI drops privileges before it loads the app: the env file is read as the act user.
    assert keys.index("uid") < keys.index("eval")


def test_vassal_user_layout_paths_under_root(project, tmp_path):
    data = base_inventory()
    root = short_dir()
    data["hosts"]["web1"].update(layout="user", root=root)
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    pairs = ini_pairs(Renderer(production).vassal(layout, "storefront", RELEASE, VENUE_DIR))
    for key in ("socket", "chdir", "stats", "logto"):
        assert ini_one(pairs, key).startswith(f"{root}/shop/"), key
    assert all(v.startswith(f"{root}/shop/") for k, v in pairs if k == "pythonpath")


# --- the gig ------------------------------------------------------------------------------------

def gig_locations(text: str) -> dict[str, str]:
    return dict(re.findall(r"location (\S+) \{\s*alias (\S+);", text))


def test_gig_system_layout_default_port(project):
    data = base_inventory()
    data["gigs"]["shop"]["domains"] = ["shop.example.test", "www.shop.example.test"]
    data["gigs"]["shop"]["client_max_body_size"] = "25m"
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    text = Renderer(production).gig(layout, "shop")
    assert_fully_rendered(text)

    assert re.search(r"^\s*listen 80;$", text, re.MULTILINE)
    assert re.search(r"^\s*server_name shop\.example\.test www\.shop\.example\.test;$", text, re.MULTILINE)
    assert re.search(r"^\s*server_tokens off;$", text, re.MULTILINE)
    assert re.search(r"^\s*client_max_body_size 25m;$", text, re.MULTILINE)
    assert re.search(r"^\s*uwsgi_pass unix:/srv/backstage/shop/run/storefront\.sock;$", text, re.MULTILINE)
    assert gig_locations(text) == {
        "/static/": "/srv/backstage/shop/acts/storefront/current/.backstage-static/",
        "/media/": "/srv/backstage/shop/acts/storefront/media/",
    }
    assert "HTTP_HOST" not in text
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize(("layout_kind", "gig_port", "port", "host_line"), [
    ("system", None, 80, False),
    ("system", 443, 443, False),
    ("system", 8443, 8443, True),
    ("user", None, 8080, True),
    ("user", 80, 80, False),
])
def test_gig_http_host_line_only_on_non_default_ports(project, layout_kind, gig_port, port,
                                                      host_line):
    data = base_inventory()
    data["hosts"]["web1"]["layout"] = layout_kind
    if layout_kind == "user":
        data["hosts"]["web1"]["user"] = "deploy"
    if gig_port:
        data["gigs"]["shop"]["port"] = gig_port
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    text = Renderer(production).gig(layout, "shop")
    assert re.search(rf"^\s*listen {port};$", text, re.MULTILINE)
    line = "uwsgi_param HTTP_HOST $host:$server_port;"
    assert (line in text) == host_line
    if host_line:
        # Inside the app's location, before the request is passed on.
        assert text.index("location / {") < text.index(line) < text.index("uwsgi_pass")


def test_gig_custom_prefixes_keep_trailing_slashes(project):
    data = base_inventory()
    data["gigs"]["shop"]["static"] = "/assets/v1/"
    data["gigs"]["shop"]["media"] = "/uploads/"
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    locations = gig_locations(Renderer(production).gig(layout, "shop"))
    assert locations == {
        "/assets/v1/": "/srv/backstage/shop/acts/storefront/current/.backstage-static/",
        "/uploads/": "/srv/backstage/shop/acts/storefront/media/",
    }
    for prefix, alias in locations.items():
        assert prefix.endswith("/") and alias.endswith("/") and not alias.endswith("//")


# --- layouts and stage files --------------------------------------------------------------------

def test_layout_bases(project):
    data = base_inventory()
    data["hosts"] = {
        "sys": {"roles": ["web"]},
        "usr": {"roles": ["web"], "layout": "user", "user": "deploy"},
        "rooted": {"roles": ["web"], "layout": "user", "root": "/opt/bs/"},
    }
    production = load(project, data)
    layouts = {n: Layout.for_host(production.name, h) for n, h in production.hosts.items()}
    assert layouts["sys"].root == "/srv/backstage/shop"
    assert layouts["sys"].nginx_conf == "/etc/nginx/nginx.conf"
    assert layouts["sys"].gig_conf("shop") == "/etc/nginx/sites-enabled/backstage-shop-shop.conf"
    assert layouts["usr"].root == "/home/deploy/backstage/shop"
    assert layouts["usr"].http_port == 8080
    assert layouts["rooted"].root == "/opt/bs/shop"  # the trailing slash is dropped
    assert layouts["rooted"].gig_conf("shop") == "/opt/bs/shop/nginx/sites/backstage-shop-shop.conf"
    for name in ("usr", "rooted"):
        layout = layouts[name]
        for path in (layout.nginx_conf, layout.nginx_sites, layout.nginx_pidfile, layout.run,
                     layout.vassals, layout.history, layout.env_file("storefront", RELEASE)):
            assert path.startswith(layout.root + "/"), (name, path)
        assert layout.nginx_dir in layout.directories
    assert not any(d.startswith("/etc") for d in layouts["sys"].directories)


def test_nginx_conf_user_layout(project, tmp_path):
    data = base_inventory()
    root = short_dir()
    data["hosts"]["web1"].update(layout="user", root=root)
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    text = Renderer(production).nginx_conf(layout)
    assert_fully_rendered(text)
    base = f"{root}/shop"
    assert re.search(rf"^pid {re.escape(base)}/run/nginx\.pid;$", text, re.MULTILINE)
    assert re.search(rf"^error_log {re.escape(base)}/log/\S+;$", text, re.MULTILINE)
    assert re.search(rf"^\s*access_log {re.escape(base)}/log/\S+;$", text, re.MULTILINE)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert re.search(rf"^\s*{kind}_temp_path {re.escape(base)}/nginx/temp/\w+;$", text, re.MULTILINE), kind
    assert re.search(rf"^\s*include {re.escape(base)}/nginx/sites/\*\.conf;$", text, re.MULTILINE)
    assert not re.search(r"^\s*user\s", text, re.MULTILINE)  # no privileges to switch to


def test_emperor_files(project):
    production = load(project, base_inventory())
    layout = Layout.for_host(production.name, production.hosts["web1"])
    renderer = Renderer(production)
    pairs = ini_pairs(renderer.emperor_ini(layout, daemonize=False))
    assert ini_one(pairs, "emperor") == "/srv/backstage/shop/vassals"
    assert ini_one(pairs, "emperor-graceful-shutdown") == "true"
    assert ini_one(pairs, "pidfile") == layout.emperor_pidfile
    assert ini_one(pairs, "umask") == "022"  # daemonized, uWSGI would make its files 0666
    assert "daemonize" not in dict(pairs)
    daemon = ini_pairs(renderer.emperor_ini(layout, daemonize=True))
    assert ini_one(daemon, "daemonize") == "/srv/backstage/shop/log/emperor.log"
    unit = renderer.emperor_unit(layout)
    assert f"ExecStart={layout.uwsgi} --ini {layout.emperor_ini}\n" in unit
    assert f"ExecStartPre=/bin/rm -f {layout.emperor_pidfile}\n" in unit
    assert "KillSignal=SIGINT\n" in unit


# --- project templates override package templates by name ----------------------------------------

def test_project_template_overrides_by_name(project):
    templates = project / "templates"  # next to inventories/
    templates.mkdir()
    (templates / "vassal.ini.j2").write_text(
        "[uwsgi]\n; custom for {{ production }}\nmodule = {{ wsgi }}\nsocket = {{ socket }}\n")
    data = base_inventory()
    data["acts"]["storefront"]["wsgi"] = "storefront.wsgi:application"
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    renderer = Renderer(production)
    text = renderer.vassal(layout, "storefront", RELEASE, VENUE_DIR)
    assert text == ("[uwsgi]\n; custom for shop\nmodule = storefront.wsgi:application\n"
                    f"socket = /srv/backstage/shop/run/storefront/{RELEASE}.sock\n")
    # Templates not overridden still come from the package.
    assert "uwsgi_pass unix:" in renderer.gig(layout, "shop")


def test_project_templates_next_to_an_inventory_outside_inventories(tmp_path):
    root = make_project(tmp_path)
    elsewhere = root / "deploy"
    (elsewhere / "templates").mkdir(parents=True)
    (elsewhere / "templates" / "gig.conf.j2").write_text("# gig {{ gig }} on {{ port }}\n")
    (elsewhere / "shop.toml").write_text(dump_toml(base_inventory()))  # ../app still resolves
    production = load_production(elsewhere / "shop.toml")
    layout = Layout.for_host(production.name, production.hosts["web1"])
    assert Renderer(production).gig(layout, "shop") == "# gig shop on 80\n"


# --- nginx itself accepts what we render ---------------------------------------------------------

NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx") or None


def rendered_user_stage(project: Path, tmp_path: Path):
    data = base_inventory()
    data["hosts"]["web1"].update(layout="user", root=short_dir())
    data["acts"]["storefront"]["http_port"] = 9001
    data["gigs"]["alt"] = {"act": "storefront", "domains": ["alt.example.test"], "port": 8443,
                           "static": "/assets/", "client_max_body_size": "1g"}
    production = load(project, data)
    layout = Layout.for_host(production.name, production.hosts["web1"])
    for directory in layout.directories:
        Path(directory).mkdir(parents=True, exist_ok=True)
    renderer = Renderer(production)
    Path(layout.nginx_conf).write_text(renderer.nginx_conf(layout))
    for gig in production.gigs:
        Path(layout.gig_conf(gig)).write_text(renderer.gig(layout, gig))
    return layout


def nginx_test(layout):
    # The very command text the stage and gig steps send, with the nginx the probe would find.
    command = nginx_command(layout, Services(nginx=NGINX), "-t")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed: cannot run nginx -t")
def test_nginx_accepts_rendered_user_layout_config(project, tmp_path):
    layout = rendered_user_stage(project, tmp_path)
    result = nginx_test(layout)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert layout.nginx_conf in result.stderr


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed: cannot run nginx -t")
def test_nginx_test_refuses_a_broken_gig(project, tmp_path):
    """The check above can fail: the same setup with one broken gig is refused."""
    layout = rendered_user_stage(project, tmp_path)
    gig = Path(layout.gig_conf("alt"))
    gig.write_text(gig.read_text().replace("server_tokens off;", "server_tokens off"))
    result = nginx_test(layout)
    assert result.returncode != 0
    assert gig.name in result.stderr


def test_a_changed_settings_overlay_changes_the_vassal(project):
    """A deploy whose code, env and vassal are unchanged changes nothing: the overlay's
    digest in the vassal makes a changed overlay (a project's own, or Backstage's next
    version) a new release."""
    production = load(project, base_inventory())
    layout = Layout.for_host(production.name, production.hosts["web1"])
    before = Renderer(production).vassal(layout, "storefront", RELEASE, VENUE_DIR)
    assert "; Settings modules beside the code: " in before
    assert " (backstage_settings)." in before
    (project / "templates").mkdir()
    (project / "templates" / "backstage_settings.py").write_text("from x import *\n")
    after = Renderer(production).vassal(layout, "storefront", RELEASE, VENUE_DIR)
    assert after != before
    digest = before.split("the code: ")[1][:12]
    assert before.replace(digest, after.split("the code: ")[1][:12]) == after
