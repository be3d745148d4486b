"""A repository written without Backstage in mind (tests/strangers/tickets), deployed with no
file of it changed: two services with per-service settings (one a settings package over a
base), DATABASES built in the settings with relative and in-tree sqlite names, hard-coded
ALLOWED_HOSTS, no STATIC_ROOT, a relative TEMPLATES dir, SECURE_SSL_REDIRECT behind a TLS gig,
a service without django.contrib.staticfiles, file logging, and a uv lock with a dev group.
Real hosts, nginx, uWSGI and Django."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from backstage.sandbox.fleet import Fleet, fleet_available
from tests.support.fleet_fixtures import RUN_PREFIX
from tests.support.testbed import SECRET_KEY, Stage
from tests.test_tls import make_certificate

pytestmark = pytest.mark.fleet
TICKETS = Path(__file__).parent.parent / "strangers" / "tickets"
WEB, API = "tickets.example.test", "api.tickets.example.test"
CERT, KEY = "/etc/ssl/tickets/web.crt", "/etc/ssl/tickets/web.key"
ROOT = "/srv/backstage/box"


def tree_digest(folder: Path) -> str:
    """Every file's path and content: what "no file of it changed" means."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def inventory_text(fleet: Fleet, repo: Path, secrets: Path) -> str:
    return f"""
[ssh]
config = "{fleet.ssh_config}"

[hosts.h1]

[venues.tickets]
requirements = "{repo}/pyproject.toml"

[defaults.acts]
venue = "tickets"
source = "{repo}"

[acts.web]
source_root = "services/web"
settings = "web.settings.production"
databases = {{ default = "visits" }}
secrets = "{secrets}"
needs = ["api"]

[acts.api]
source_root = "services/api"
settings = "api.settings"
databases = {{ default = "catalog" }}

[databases.visits]
[databases.catalog]

[gigs.web]
act = "web"
domains = ["{WEB}"]
tls_certificate = "{CERT}"
tls_key = "{KEY}"

[gigs.api]
act = "api"
domains = ["{API}"]
"""


@pytest.fixture(scope="module")
def tickets(tmp_path_factory):
    reason = fleet_available()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("strangers")
    fleet = Fleet(work / "fleet", prefix=RUN_PREFIX)
    try:
        fleet.start(["h1"])
        repo = work / "tickets"
        shutil.copytree(TICKETS, repo)
        before = tree_digest(repo)
        cert, key = make_certificate(work, WEB)
        fleet.run("h1", f"mkdir -p /etc/ssl/tickets && (umask 077 && cat > {KEY})",
                  input=key.read_text())
        fleet.run("h1", f"cat > {CERT} && cp {CERT} /tmp/client-ca.crt", input=cert.read_text())
        secrets = work / "web.env"
        secrets.write_text(f"DJANGO_SECRET_KEY={SECRET_KEY}\n")
        (work / "inventories").mkdir()
        inventory = work / "inventories" / "box.toml"
        inventory.write_text(inventory_text(fleet, repo, secrets))
        stage = Stage(fleet, work, repo, inventory)
        stage.cli("setup-stage")
        stage.cli("deploy-act", "--all")
        assert tree_digest(repo) == before == tree_digest(TICKETS)  # no file of it changed
        yield stage
    finally:
        fleet.stop()


def https(stage: Stage, path: str) -> tuple[int, str]:
    done = stage.fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", "/tmp/client-ca.crt",
        "--resolve", f"{WEB}:443:127.0.0.1", "-w", "\n%{http_code}", f"https://{WEB}{path}"])
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_the_site_serves_its_templates_and_static_files_through_nginx_over_https(tickets):
    status, page = https(tickets, "/")
    assert status == 200, page
    assert "<h1>Tickets</h1>" in page  # its TEMPLATES dir is relative to the project root
    status, css = https(tickets, "/static/web/site.css")
    assert status == 200 and "darkred" in css
    status, where = https(tickets, "/where/")
    assert json.loads(where) == {"database": f"{ROOT}/data/visits.sqlite3", "secure": True}


def test_an_unknown_host_gets_404_never_the_welcome_page(tickets):
    status, body = tickets.fleet.http("h1", "/", host_header="unknown.example.test")
    assert status == 404 and "Welcome to nginx" not in body, body
    tls = tickets.fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "-k", "--resolve",
        "unknown.example.test:443:127.0.0.1", "https://unknown.example.test/"], check=False)
    assert tls.returncode == 35, (tls.returncode, tls.stderr)  # handshake refused


def test_plain_http_only_redirects(tickets):
    status, _ = tickets.fleet.http("h1", "/", host_header=WEB)
    assert status == 301


def test_the_api_without_static_files_serves_and_keeps_its_rows(tickets):
    stage = tickets
    post = stage.fleet.run("h1", ["curl", "-sS", "--noproxy", "*", "-H", f"Host: {API}",
                                  "--data", "title=Hamlet", "http://127.0.0.1/shows/"])
    assert json.loads(post.stdout)["shows"] == ["Hamlet"]
    # Its "/" is a 404: the default health check took it as proof that the service runs.
    assert stage.fleet.http("h1", "/", host_header=API)[0] == 404
    status, body = stage.fleet.http("h1", "/shows/", host_header=API)
    assert status == 200 and json.loads(body) == {
        "shows": ["Hamlet"], "database": f"{ROOT}/data/catalog.sqlite3"}


def test_migrations_ran_once_each_into_the_productions_data(tickets):
    stage = tickets
    history = [json.loads(line) for line in
               stage.cli("history", "--json", "--limit", "100").stdout.splitlines()]
    migrated = sorted((e["act"], tuple(e["databases"])) for e in history
                      if e["event"] == "migrate")
    assert migrated == [("api", ("catalog",)), ("web", ("visits",))]
    files = stage.fleet.run("h1", ["ls", f"{ROOT}/data"]).stdout.split()
    assert {"catalog.sqlite3", "visits.sqlite3"} <= set(files)
    # Nothing in a release: the project's relative 'db.sqlite3' never came into being.
    found = stage.fleet.run("h1", ["find", f"{ROOT}/acts", "-name", "*.sqlite3"]).stdout
    assert found == ""


def test_deploy_all_switched_the_backend_before_the_site_that_needs_it(tickets):
    history = [json.loads(line) for line in
               tickets.cli("history", "--json", "--limit", "100").stdout.splitlines()]
    deploys = sorted((e["time"], e["act"]) for e in history if e["event"] == "deploy")
    assert [act for _, act in deploys] == ["api", "web"]


def test_only_the_locks_runtime_packages_reach_the_host(tickets):
    packages = f"ls {ROOT}/venues/*/lib/python3*/site-packages"
    venue = tickets.fleet.run("h1", ["sh", "-c", packages]).stdout.split()
    assert any(p.startswith("django-5.2") for p in venue)
    assert not any(p.startswith(("pytest", "pluggy", "iniconfig")) for p in venue), venue
    wheels = tickets.fleet.run("h1", ["ls", f"{ROOT}/wheelhouse"]).stdout
    assert "pytest" not in wheels


def test_the_web_log_file_of_the_project_goes_to_the_acts_log(tickets):
    """Its LOGGING writes a relative 'web.log' (in the release, root's): the overlay sends it
    to stderr, which uWSGI writes to the act's log."""
    found = tickets.fleet.run("h1", ["find", f"{ROOT}/acts/web", "-name", "web.log"]).stdout
    assert found == ""
    assert tickets.fleet.run("h1", ["test", "-f", f"{ROOT}/log/web.log"], check=False).returncode == 0
