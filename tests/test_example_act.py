"""The storefront example act works as Backstage runs it: its own plain settings under
Backstage's settings overlay, which reads the deployment's environment.

Everything runs the real example in subprocesses (as uWSGI and the deploy steps would), with
every path pointed at ``tmp_path`` so nothing is written into the repository.
"""

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "storefront"
HOST = "shop.example.test"

# Calls storefront.wsgi.application the way uWSGI does and prints the responses as JSON.
WSGI_CLIENT = r"""
import io, json, sys
from wsgiref.util import setup_testing_defaults
from storefront.wsgi import application

def call(method, path, body="", content_type="", host=sys.argv[2]):
    body = body.encode()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": host,
               "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    status = []
    chunks = application(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        text = b"".join(chunks).decode()
    finally:
        getattr(chunks, "close", lambda: None)()
    return {"status": int(status[0].split()[0]), "body": text}

print(json.dumps([call(*request) for request in json.loads(sys.argv[1])]))
"""


def clean_environ():
    """The parent's environment minus anything that could leak into the act's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BACKSTAGE_")) and key != "PYTHONPATH"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep __pycache__ out of examples/
    return env


def act_env(root, **databases):
    """Production-like environment for the act, everything under ``root``: the overlay (as
    a release holds it) over the example's own settings."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    overlay = root / ".backstage-settings"
    overlay.mkdir(exist_ok=True)
    shutil.copy2(REPO / "templates" / "backstage_settings.py", overlay)
    databases = {
        name: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(data / f"{name}.sqlite3")}
        for name in ("users", "greetings")
    } | databases
    return clean_environ() | {
        "PYTHONPATH": f"{EXAMPLE}:{overlay}",
        "DJANGO_SETTINGS_MODULE": "backstage_settings",
        "BACKSTAGE_SETTINGS": "storefront.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "BACKSTAGE_ALLOWED_HOSTS": f"{HOST},localhost",
        "BACKSTAGE_DATABASES": json.dumps(databases),
        "BACKSTAGE_STATIC_ROOT": str(root / "static"),
        "BACKSTAGE_MEDIA_ROOT": str(root / "media"),
        "BACKSTAGE_ACT_DATA_DIR": str(data / "storefront"),
        "BACKSTAGE_RELEASE": "r1",
    }


def test_the_example_settings_know_nothing_of_backstage():
    """Issue 14: the example deploys through the overlay, not by reading Backstage's names."""
    for path in (EXAMPLE / "storefront").glob("*.py"):
        assert "BACKSTAGE" not in path.read_text(), path


def run(env, *args, check=True):
    result = subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # failures are reported below, with the act's output
    )
    if check and result.returncode != 0:
        pytest.fail(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def manage(env, *args, check=True):
    return run(env, "manage.py", *args, check=check)


def wsgi(env, *requests):
    """Send ``(method, path[, body, content_type])`` requests to the act's WSGI application."""
    result = run(env, "-c", WSGI_CLIENT, json.dumps(requests), HOST)
    return json.loads(result.stdout)


def tables(path):
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("storefront")
    env = act_env(root)
    manage(env, "migrate", "--database", "users", "--noinput")
    manage(env, "migrate", "--database", "greetings", "--noinput")
    return root, env


def test_each_database_gets_only_its_own_tables(migrated):
    root, _ = migrated
    users = tables(root / "data" / "users.sqlite3")
    greetings = tables(root / "data" / "greetings.sqlite3")
    assert "people_person" in users and "greetings_greeting" not in users
    assert "greetings_greeting" in greetings and "people_person" not in greetings


def test_migrate_refuses_the_default_database(tmp_path):
    result = manage(act_env(tmp_path), "migrate", "--noinput", check=False)
    assert result.returncode != 0
    assert "ENGINE" in result.stderr  # the dummy backend's ImproperlyConfigured


def test_check_deploy_reports_no_errors(tmp_path):
    result = manage(act_env(tmp_path), "check", "--deploy", "--fail-level", "ERROR")
    assert "ERRORS:" not in result.stdout + result.stderr


def test_secret_key_is_required_without_debug(tmp_path):
    env = act_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    result = manage(env, "check", check=False)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr
    manage(env | {"DJANGO_DEBUG": "1"}, "check")


def test_collectstatic_fills_static_root(tmp_path):
    env = act_env(tmp_path)
    manage(env, "collectstatic", "--noinput")
    css = tmp_path / "static" / "greetings" / "style.css"
    assert css.read_text() == (EXAMPLE / "greetings/static/greetings/style.css").read_text()


def test_requests_through_wsgi(migrated):
    _, env = migrated
    first, second, json_greet, get_greet, home, health = wsgi(
        env,
        ("POST", "/api/greet", "name=Ada", "application/x-www-form-urlencoded"),
        ("POST", "/api/greet", "name=Grace", "application/x-www-form-urlencoded"),
        ("POST", "/api/greet", json.dumps({"name": "Linus"}), "application/json"),
        ("GET", "/api/greet"),
        ("GET", "/"),
        ("GET", "/healthz"),
    )
    assert first == {"status": 201, "body": '{"people": 1, "greetings": 1}'}
    assert second == {"status": 201, "body": '{"people": 2, "greetings": 2}'}
    assert json.loads(json_greet["body"]) == {"people": 3, "greetings": 3}
    assert get_greet["status"] == 405
    assert home["status"] == 200
    page = home["body"]
    assert "<h1>Welcome to the storefront</h1>" in page
    assert '<span id="people">3</span>' in page and '<span id="greetings">3</span>' in page
    assert "Hello, Linus!" in page
    assert 'href="/static/greetings/style.css"' in page
    assert "release: r1" in page
    assert health == {"status": 200, "body": "ok"}


def test_unknown_host_is_rejected(migrated):
    _, env = migrated
    [response] = wsgi(env | {"BACKSTAGE_ALLOWED_HOSTS": "elsewhere.test"}, ("GET", "/healthz"))
    assert response["status"] == 400


def test_healthz_fails_when_a_database_is_not_migrated(migrated, tmp_path):
    _, env = migrated
    databases = json.loads(env["BACKSTAGE_DATABASES"])
    databases["greetings"]["NAME"] = str(tmp_path / "empty.sqlite3")
    [response] = wsgi(env | {"BACKSTAGE_DATABASES": json.dumps(databases)}, ("GET", "/healthz"))
    assert response["status"] == 500


def test_the_example_runs_without_backstage(tmp_path):
    """Its own settings alone: a developer's ``migrate`` and ``check`` with no overlay."""
    env = clean_environ() | {"DJANGO_DEBUG": "1", "STOREFRONT_DATA_DIR": str(tmp_path)}
    manage(env, "migrate", "--database", "users", "--noinput")
    assert "people_person" in tables(tmp_path / "users.sqlite3")
    assert "System check identified no issues" in manage(env, "check").stdout
