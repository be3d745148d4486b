"""TLS for gigs: the inventory keys, the rendered server blocks and ``nginx -t`` of them. A fleet
host serving HTTPS with a self-signed certificate made by the test: tests/fleet/test_tls.py."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backstage.errors import InventoryError
from backstage.model import Layout, load_production
from backstage.render import Renderer
from tests.test_inventory import base_inventory, make_project, write_inventory
from tests.test_render import NGINX, nginx_test, short_dir

CERT = "/etc/ssl/backstage/shop.crt"
KEY = "/etc/ssl/backstage/shop.key"
OPENSSL = shutil.which("openssl")


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path)


def tls_inventory(**gig) -> dict:
    data = base_inventory()
    data["gigs"]["shop"].update({"tls_certificate": CERT, "tls_key": KEY, **gig})
    return data


def render_gig(project: Path, data: dict, gig: str = "shop") -> str:
    production = load_production(write_inventory(project, data))
    host = next(iter(production.hosts))
    return Renderer(production).gig(Layout.for_host(production.name, production.hosts[host]), gig)


def servers(text: str) -> list[str]:
    """The ``server { ... }`` blocks of a rendered gig, in order."""
    return re.findall(r"^server \{\n.*?^\}", text, flags=re.DOTALL | re.MULTILINE)


def make_certificate(directory: Path, domain: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) and key for ``domain``."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = directory / f"{domain}.crt", directory / f"{domain}.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    f"/CN={domain}", "-addext", f"subjectAltName=DNS:{domain}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


# --- the inventory ------------------------------------------------------------------------------

def test_tls_keys_load_with_defaults(project):
    production = load_production(write_inventory(project, tls_inventory()))
    gig = production.gigs["shop"]
    assert gig.https and gig.tls_certificate == CERT and gig.tls_key == KEY
    assert gig.tls_port == 443
    assert gig.hsts is False and gig.hsts_max_age is None


@pytest.mark.parametrize(("hsts", "max_age"), [(True, 31536000), (600, 600), (False, None)])
def test_hsts_forms(project, hsts, max_age):
    production = load_production(write_inventory(project, tls_inventory(hsts=hsts)))
    assert production.gigs["shop"].hsts_max_age == max_age


@pytest.mark.parametrize(("gig", "key", "reason"), [
    ({"tls_certificate": None}, "gigs.shop.tls_certificate", "needs both"),
    ({"tls_key": None}, "gigs.shop.tls_key", "needs both"),
    ({"tls_certificate": "certs/shop.crt"}, "gigs.shop.tls_certificate", "bad path"),
    ({"tls_key": "/etc/ssl/../shadow"}, "gigs.shop.tls_key", "bad path"),
    ({"tls_key": "/etc/ssl/$(reboot)"}, "gigs.shop.tls_key", "bad path"),
    ({"tls_port": 80}, "gigs.shop.tls_port", "also the gig's plain-HTTP port"),
    ({"tls_port": 0}, "gigs.shop.tls_port", "greater than or equal to 1"),
    ({"hsts": 0}, "gigs.shop.hsts", ""),
    ({"hsts": "yes"}, "gigs.shop.hsts", ""),
    ({"hsts": 1.5}, "gigs.shop.hsts", ""),
])
def test_bad_tls_settings(project, gig, key, reason):
    data = tls_inventory(**{k: v for k, v in gig.items() if v is not None})
    for k, v in gig.items():
        if v is None:
            del data["gigs"]["shop"][k]
    with pytest.raises(InventoryError) as info:
        load_production(write_inventory(project, data))
    assert info.value.key.startswith(key), info.value
    assert reason in info.value.reason


def test_hsts_without_tls_is_refused(project):
    data = base_inventory()
    data["gigs"]["shop"]["hsts"] = True
    with pytest.raises(InventoryError, match="gigs.shop.hsts: HSTS needs HTTPS"):
        load_production(write_inventory(project, data))


def test_tls_port_clashing_with_an_act_port_is_refused(project):
    data = tls_inventory(tls_port=9443)
    data["acts"]["storefront"]["http_port"] = 9443
    with pytest.raises(InventoryError, match="acts.storefront.http_port: port 9443 clashes"):
        load_production(write_inventory(project, data))


def test_user_layout_needs_an_unprivileged_tls_port(project):
    data = tls_inventory()
    data["hosts"]["web1"].update(layout="user", root="/home/deploy/stage")
    with pytest.raises(InventoryError, match="gigs.shop.tls_port: port 443 needs privileges"):
        load_production(write_inventory(project, data))
    data["gigs"]["shop"]["tls_port"] = 8443
    assert load_production(write_inventory(project, data)).gigs["shop"].tls_port == 8443


# --- rendering ------------------------------------------------------------------------------------

def test_plain_gig_has_one_server_with_safe_defaults(project):
    text = render_gig(project, base_inventory())
    [server] = servers(text)
    assert "listen 80;" in server and "ssl" not in server
    for line in ("server_tokens off;", "client_header_timeout 15s;", "client_body_timeout 30s;",
                 "send_timeout 30s;", "keepalive_timeout 30s;"):
        assert line in server
    assert "return 301" not in server and "Strict-Transport-Security" not in server


def test_tls_gig_redirects_http_and_serves_https(project):
    text = render_gig(project, tls_inventory())
    redirect, https = servers(text)
    assert "listen 80;" in redirect
    assert "return 301 https://$host$request_uri;" in redirect
    assert "uwsgi_pass" not in redirect and "location" not in redirect
    assert "server_tokens off;" in redirect
    assert "listen 443 ssl;" in https
    assert f"ssl_certificate {CERT};" in https
    assert f"ssl_certificate_key {KEY};" in https
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in https
    assert "server_tokens off;" in https and "send_timeout 30s;" in https
    assert "Strict-Transport-Security" not in text  # only when asked
    assert "HTTP_HOST $host:$server_port" not in https  # 443 is a default port
    assert "uwsgi_param HTTP_X_FORWARDED_PROTO $scheme;" in https


def test_tls_on_another_port_keeps_it_in_the_redirect_and_host(project):
    data = tls_inventory(tls_port=8443, hsts=True)
    _redirect, https = servers(render_gig(project, data))
    assert "return 301 https://$host:8443$request_uri;" in _redirect
    assert "listen 8443 ssl;" in https
    assert "uwsgi_param HTTP_HOST $host:$server_port;" in https
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in https


def test_hsts_max_age_as_asked(project):
    text = render_gig(project, tls_inventory(hsts=600))
    # The server's, and the maintenance page's own (a location's add_header replaces them all).
    assert re.findall(r"Strict-Transport-Security (\S+)", text) == ['"max-age=600"'] * 2
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in servers(text)[1]


def test_aliases_cannot_be_walked_out_of(project):
    """``alias`` with a location and target that both end in '/' is immune to '/static../'."""
    text = render_gig(project, tls_inventory())
    pairs = re.findall(r"location (\S+) \{\n\s+alias (\S+);", text)
    assert len(pairs) == 2
    for location, alias in pairs:
        assert location.endswith("/") and alias.endswith("/"), (location, alias)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed: cannot run nginx -t")
def test_nginx_accepts_rendered_tls_gig(project, tmp_path):
    cert, key = make_certificate(tmp_path, "shop.example.test")
    data = base_inventory()
    data["hosts"]["web1"].update(layout="user", root=short_dir())
    data["gigs"]["shop"].update(tls_certificate=str(cert), tls_key=str(key), tls_port=8443,
                                hsts=True)
    production = load_production(write_inventory(project, data))
    layout = Layout.for_host(production.name, production.hosts["web1"])
    for directory in layout.directories:
        Path(directory).mkdir(parents=True, exist_ok=True)
    renderer = Renderer(production)
    Path(layout.nginx_conf).write_text(renderer.nginx_conf(layout))
    Path(layout.gig_conf("shop")).write_text(renderer.gig(layout, "shop"))
    default = renderer.default_server(layout, "web1")
    assert "listen 8080;" in default and "listen 8443 ssl;" in default  # the gig's ports
    Path(layout.default_server_conf).write_text(default)
    result = nginx_test(layout)
    assert result.returncode == 0, result.stderr
    # And nginx really reads the files named: a missing key is refused.
    key.unlink()
    result = nginx_test(layout)
    assert result.returncode != 0 and str(key) in result.stderr

