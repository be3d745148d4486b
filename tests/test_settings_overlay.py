"""Backstage's settings module (the overlay) on a project written without Backstage in mind
(tests/strangers/tickets): real Django, in a release laid out as on a host, with the
environment a deploy gives it (backstage.model.django)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backstage.commands.release import Manage
from backstage.model import Layout, load_production
from backstage.model.django import (
    OVERRIDDEN,
    deployment_environment,
    overlay_summary,
)
from backstage.model.secrets import reveal
from backstage.render import Renderer

pytest.importorskip("django")

TICKETS = Path(__file__).parent / "strangers" / "tickets"
RELEASE = "20261129T000000000Z-0123abcd"
SHOW = ("import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in %r}, default=str))")


def production(tmp_path: Path, web: str = "", api: str = 'databases = { default = "catalog" }'):
    (tmp_path / "secrets.env").write_text("DJANGO_SECRET_KEY=from-the-secrets\n")
    (tmp_path / "inventory.toml").write_text(f"""
production = "box"
[hosts.h1]
layout = "user"
root = "/home/box"
[venues.tickets]
requirements = "{TICKETS}/pyproject.toml"
[acts.web]
venue = "tickets"
source = "{TICKETS}"
source_root = "services/web"
settings = "web.settings.production"
databases = {{ default = "visits" }}
secrets = "secrets.env"
{web}
[acts.api]
venue = "tickets"
source = "{TICKETS}"
source_root = "services/api"
{'' if 'settings_file' in api else 'settings = "api.settings"'}
{api}
[databases.visits]
[databases.catalog]
name = "shows.db"
[gigs.web]
act = "web"
domains = ["tickets.example.test", "www.tickets.example.test"]
tls_certificate = "/etc/ssl/tickets.pem"
tls_key = "/etc/ssl/tickets.key"
tls_port = 8443
[gigs.api]
act = "api"
domains = ["api.tickets.example.test"]
static = false
""")
    return load_production(tmp_path / "inventory.toml")


def settings_of(tmp_path: Path, act: str, names=OVERRIDDEN, **inventory) -> dict:
    """The settings Django sees in a release of the act, run as a deploy runs manage.py."""
    prod = production(tmp_path, **inventory)
    layout = Layout("box", "user", str(tmp_path / "host"), 8080)  # a host's paths, here
    release = Path(layout.release(act, RELEASE))
    if not release.exists():
        shutil.copytree(TICKETS, release)
        overlay = Path(layout.overlay_dir(act, RELEASE))
        overlay.mkdir()
        for module, text in Renderer(prod).settings_modules(act).items():
            (overlay / f"{module}.py").write_text(text)
    manage = Manage.of(prod, act, layout, RELEASE, sys.prefix)
    env = {k: v if isinstance(v, str) else json.dumps(v, default=str)
           for k, v in deployment_environment(prod, act, layout,
                                              prod.secrets_of(act)).items()}
    env |= {k: reveal(v) for k, v in prod.secrets_of(act).items()} | manage.environment | {"PYTHONPATH": ":".join(manage.import_path)}
    done = subprocess.run([sys.executable, "-c", SHOW % (list(names),)], cwd=manage.cwd,
                          env={k: str(v) for k, v in env.items()}, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return {"layout": layout, **json.loads(done.stdout)}


def test_the_overlay_sets_what_the_deployment_owns_and_keeps_the_rest(tmp_path):
    seen = settings_of(tmp_path, "web", (*OVERRIDDEN, "SECURE_SSL_REDIRECT", "INSTALLED_APPS",
                                         "TEMPLATES", "DEBUG"))
    layout = seen["layout"]
    assert seen["DATABASES"]["default"]["NAME"] == f"{layout.data}/visits.sqlite3"
    assert seen["ALLOWED_HOSTS"] == ["tickets.example.test", "www.tickets.example.test",
                                     "localhost", "127.0.0.1"]
    assert seen["CSRF_TRUSTED_ORIGINS"] == ["https://tickets.example.test:8443",
                                            "https://www.tickets.example.test:8443"]
    assert seen["STATIC_ROOT"] == layout.static("web", RELEASE)
    assert seen["STATIC_URL"] == "/static/"
    assert seen["MEDIA_ROOT"] == layout.media("web")
    assert seen["SECRET_KEY"] == "from-the-secrets"
    assert seen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # The project's own choices stay: its production module over its base.
    assert seen["SECURE_SSL_REDIRECT"] is True and seen["DEBUG"] is False
    assert seen["TEMPLATES"][0]["DIRS"] == ["web/templates"]
    assert "visits" in seen["INSTALLED_APPS"]


def test_a_file_log_inside_the_release_goes_to_stderr(tmp_path):
    seen = settings_of(tmp_path, "web", ("LOGGING",))
    assert seen["LOGGING"]["handlers"] == {"file": {"class": "logging.StreamHandler"}}
    assert seen["LOGGING"]["root"] == {"handlers": ["file"], "level": "WARNING"}


def test_the_acts_own_sqlite_files_outlive_the_release(tmp_path):
    """An alias the inventory does not map keeps its engine; its file, relative to the project
    root or inside the release, moves under data/<act>/ (a release goes at a later deploy)."""
    seen = settings_of(tmp_path, "api", ("DATABASES", "ALLOWED_HOSTS", "STATIC_URL"),
                       api="")
    layout = seen["layout"]
    assert seen["DATABASES"]["default"] == {
        **seen["DATABASES"]["default"], "ENGINE": "django.db.backends.sqlite3",
        "NAME": f"{layout.data}/api/services/api/catalog.sqlite3"}
    assert Path(layout.data, "api", "services", "api").is_dir()
    assert seen["ALLOWED_HOSTS"][0] == "api.tickets.example.test"
    assert seen["STATIC_URL"] is None  # the gig serves no static files: the project's own


def test_a_mapped_alias_keeps_the_projects_choices_but_not_its_connection(tmp_path):
    seen = settings_of(tmp_path, "api", ("DATABASES",))
    default = seen["DATABASES"]["default"]
    assert default["NAME"] == f"{seen['layout'].data}/shows.db"
    assert default["ENGINE"] == "django.db.backends.sqlite3"


def test_without_the_overlay_the_act_runs_its_own_settings(tmp_path):
    seen = settings_of(tmp_path, "api", ("ALLOWED_HOSTS", "DATABASES"),
                       api="settings_overlay = false")
    assert seen["ALLOWED_HOSTS"] == ["api.tickets.local"]
    assert seen["DATABASES"]["default"]["NAME"].endswith(f"{RELEASE}/services/api/catalog.sqlite3")


def test_plan_names_what_the_overlay_sets(tmp_path):
    prod = production(tmp_path)
    assert overlay_summary(prod, "web") == (
        "web.settings.production overlaid: DATABASES (default: visits), ALLOWED_HOSTS, "
        "CSRF_TRUSTED_ORIGINS, STATIC_ROOT, STATIC_URL, MEDIA_ROOT, MEDIA_URL, SECRET_KEY, "
        "SECURE_PROXY_SSL_HEADER, LOGGING (docs/inventory.md: the settings overlay)")
    assert overlay_summary(production(tmp_path, api="settings_overlay = false"), "api") is None


@pytest.mark.parametrize("overlay", [True, False])
def test_a_settings_file_kept_outside_the_repository_ships_with_the_release(tmp_path, overlay):
    """The cleanest way to adapt a project one does not own: a settings module of one's own
    over the project's, outside its repository."""
    (tmp_path / "adapt.py").write_text("from api.settings import *  # noqa\n"
                                       "TIME_ZONE = 'Europe/Paris'\n")
    inventory = 'databases = { default = "catalog" }\nsettings_file = "adapt.py"\n'
    if not overlay:
        inventory += "settings_overlay = false\n"
    seen = settings_of(tmp_path, "api", ("TIME_ZONE", "ALLOWED_HOSTS", "INSTALLED_APPS"),
                       api=inventory)
    assert seen["TIME_ZONE"] == "Europe/Paris" and "catalog" in seen["INSTALLED_APPS"]
    assert seen["ALLOWED_HOSTS"][0] == ("api.tickets.example.test" if overlay
                                        else "api.tickets.local")
