"""Acts on gunicorn and granian (issue 20), without hosts: the inventory's keys and their
one-line errors (exit 2, no host contacted, through the CLI), the server's vassal, the
requirement added to the venue, and the commands of the switch between servers."""

import base64
import json
import re

import pytest

from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.model import Layout, RunAs, load_production, servers
from backstage.render import Renderer
from tests.support.inventories import example_inventory
from tests.test_inventory import base_inventory, make_project, write_inventory
from tests.test_operator_errors import run_cli

RELEASE = "20240102T030405Z-0123abcd"
VENUE_DIR = "/srv/backstage/shop/venues/shop-abcdef"

BAD_INVENTORIES = [
    ("unknown-server", 'server = "unicorn"\n',
     r"acts\.storefront\.server: Input should be 'uwsgi', 'gunicorn' or 'granian'"),
    ("asgi-on-uwsgi", 'interface = "asgi"\n',
     r'acts\.storefront: interface = "asgi" needs a server that runs it \(server = "uwsgi"'),
    ("asgi-on-gunicorn", 'server = "gunicorn"\ninterface = "asgi"\n',
     r'interface = "asgi" needs a server .*"gunicorn" runs wsgi only'),
    ("asgi-callable-on-wsgi", 'server = "granian"\nasgi = "shop.asgi:application"\n',
     r"acts\.storefront: 'asgi' names the ASGI callable"),
    ("unknown-option", 'server = "gunicorn"\n[acts.storefront.gunicorn]\nworkerz = 4\n',
     r"acts\.storefront\.gunicorn\.workerz: unknown key"),
    ("bad-option", 'server = "granian"\n[acts.storefront.granian]\ntimeout = 0\n',
     r"acts\.storefront\.granian\.timeout: "),
    ("options-of-another-server", 'server = "gunicorn"\n[acts.storefront.granian]\n',
     r'\[granian\] options need server = "granian"'),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("servers")
    (root / "inventories").mkdir()
    base = example_inventory({"web1": "web"})
    for name, extra, _ in BAD_INVENTORIES:
        (root / "inventories" / f"{name}.toml").write_text(base + extra)
    (root / "inventories" / "known_hosts").write_text("")
    (root / "inventories" / "ssh_config").write_text(
        f"Host *\n  ProxyCommand /bin/sh -c 'echo %h >> {root / 'contacted'}'\n")
    return root


@pytest.mark.parametrize(("name", "extra", "says"), BAD_INVENTORIES,
                         ids=[b[0] for b in BAD_INVENTORIES])
def test_a_bad_server_key_is_one_line_exit_2_and_no_host_contacted(project, name, extra, says):
    done = run_cli(project, ["deploy-act", "storefront", "--inventory",
                             f"inventories/{name}.toml"])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(says, lines[0]), lines[0]
    assert not (project / "contacted").exists()


def production(tmp_path, **act):
    make_project(tmp_path)
    data = base_inventory()
    data["acts"]["storefront"].update(act)
    return load_production(write_inventory(tmp_path, data))


def layout_of(prod) -> Layout:
    return Layout.for_host(prod.name, prod.hosts["web1"])


LAYOUT = Layout("shop", "system", "/srv/backstage/shop", 80)


def spec_of(ini: str) -> dict:
    command = re.search(r"^attach-daemon = exec \S+ -I -S \S+ bind (\S+)$", ini, re.MULTILINE)
    encoded = command.group(1)
    return json.loads(base64.urlsafe_b64decode(encoded))


def test_a_gunicorn_vassal_runs_the_launcher_as_root_for_the_acts_user(tmp_path):
    prod = production(tmp_path, server="gunicorn", processes=3, threads=4,
                      gunicorn={"graceful_timeout": 7, "max_requests": 100})
    layout = layout_of(prod)
    ini = Renderer(prod).vassal(layout, "storefront", RELEASE, VENUE_DIR,
                                RunAs("bs-shop-storefront", "bs-shop-storefront", "www-data"))
    spec = spec_of(ini)
    assert "uid" not in ini and "socket =" not in ini  # the launcher binds, then drops
    assert f"exec {VENUE_DIR}/bin/python -I -S {layout.stage}/serverside.py bind" in ini
    assert "reload-mercy = 12" in ini
    assert f"pidfile = {servers.pidfile(layout, 'storefront', RELEASE)}" in ini
    assert spec["socket"] == layout.socket("storefront", RELEASE)
    assert (spec["user"], spec["nginx_group"]) == ("bs-shop-storefront", "www-data")
    assert (spec["workers"], spec["threads"], spec["app"]) == (3, 4, None)
    assert spec["options"]["graceful_timeout"] == 7 and spec["options"]["max_requests"] == 100
    assert not re.search(r"[,%$]", ini.split("bind ", 1)[1])  # nothing uWSGI would expand


def test_a_granian_asgi_act_names_its_asgi_callable(tmp_path):
    prod = production(tmp_path, server="granian", interface="asgi")
    spec = spec_of(Renderer(prod).vassal(layout_of(prod), "storefront", RELEASE, VENUE_DIR))
    assert (spec["interface"], spec["app"], spec["user"]) == \
        ("asgi", "storefront.asgi:application", None)


def test_the_venue_gets_the_servers_requirement_and_uwsgi_adds_none(tmp_path):
    assert servers.venue_requirements(production(tmp_path / "a"), "shop") == ()
    assert servers.venue_requirements(production(tmp_path / "b", server="granian"),
                                      "shop") == (servers.REQUIREMENTS["granian"],)


def test_every_gig_can_proxy_to_an_http_release_while_its_flag_is_there(tmp_path):
    prod = production(tmp_path)
    layout = layout_of(prod)
    text = Renderer(prod).gig(layout, "shop")
    assert f"if (-f {servers.http_flag(layout, 'storefront')})" in text
    assert f"proxy_pass http://unix:{servers.http_link(layout, 'storefront')}:;" in text


def test_a_switch_moves_the_http_socket_and_flag_around_the_stable_socket():
    """To an HTTP release: its socket link, then the flag (nginx proxies from then on), then
    the uwsgi link. To a uwsgi release: the uwsgi link first, then the flag goes."""
    layout = LAYOUT
    text = sess_cmd.relink(Script(), layout, "storefront", RELEASE).text()
    http_link = text.index(servers.http_link(layout, "storefront"))
    flag = text.index(f"touch {servers.http_flag(layout, 'storefront')}")
    stable = text.index(f"mv -Tf {layout.stable_socket('storefront')}.backstage-new")
    unflag = text.index(f"rm -f {servers.http_flag(layout, 'storefront')}")
    assert http_link < flag < stable < unflag
