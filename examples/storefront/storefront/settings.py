"""Settings for the storefront example act.

Everything host-specific comes from the environment, which is the contract between an act and
Backstage (the vassal's ``env`` lines and the act's shared env file):

=========================  =========================================================================
DJANGO_SECRET_KEY          required unless DJANGO_DEBUG=1 (then an insecure dev key is used)
DJANGO_DEBUG               "1" turns DEBUG on; anything else (or unset) means off
BACKSTAGE_ALLOWED_HOSTS    comma-separated host names (default "localhost,127.0.0.1")
BACKSTAGE_DATABASES        JSON object: logical database name -> Django DATABASES entry
BACKSTAGE_DATA_DIR         local-dev only: where the sqlite files go when BACKSTAGE_DATABASES is
                           unset (default: var/ next to manage.py)
BACKSTAGE_STATIC_ROOT      collectstatic target, served by nginx at /static/ (default var/static)
BACKSTAGE_MEDIA_ROOT       uploaded files, served by nginx at /media/ (default var/media)
BACKSTAGE_RELEASE          release id shown in the page footer (default "dev")
=========================  =========================================================================

Migrations run per logical database, never against ``default``::

    python manage.py migrate --database users
    python manage.py migrate --database greetings

``default`` is deliberately Django's dummy backend: any query or ``migrate`` that reaches it fails
loudly instead of silently creating a third database.
"""

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Scratch directory for local development only; deployed acts get every path from the environment.
LOCAL_VAR_DIR = BASE_DIR / "var"

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set (or DJANGO_DEBUG=1 for local dev)"
        )
    SECRET_KEY = "django-insecure-storefront-local-development-key-do-not-deploy"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("BACKSTAGE_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if host.strip()
]

BACKSTAGE_RELEASE = os.environ.get("BACKSTAGE_RELEASE", "dev")

INSTALLED_APPS = [
    # No auth/admin/sessions/messages (and so no contenttypes, which nothing here uses): every
    # installed app with models must be mapped to a logical database below.
    "django.contrib.staticfiles",
    "people",
    "greetings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "storefront.urls"
WSGI_APPLICATION = "storefront.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# --- Databases -------------------------------------------------------------------------------
# Which logical database each app label lives in; storefront.routers.LogicalDatabaseRouter reads it.
BACKSTAGE_APP_DATABASES = {
    "people": "users",
    "greetings": "greetings",
}


def _logical_databases():
    raw = os.environ.get("BACKSTAGE_DATABASES")
    if raw:
        try:
            databases = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ImproperlyConfigured(f"BACKSTAGE_DATABASES is not valid JSON: {exc}") from exc
        if not isinstance(databases, dict) or not all(
            isinstance(entry, dict) for entry in databases.values()
        ):
            raise ImproperlyConfigured("BACKSTAGE_DATABASES must be a JSON object of objects")
    else:
        data_dir = Path(os.environ.get("BACKSTAGE_DATA_DIR", LOCAL_VAR_DIR))
        data_dir.mkdir(parents=True, exist_ok=True)  # sqlite does not create parent directories
        databases = {
            name: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(data_dir / f"{name}.sqlite3"),
            }
            for name in sorted(set(BACKSTAGE_APP_DATABASES.values()))
        }
    if "default" in databases:
        raise ImproperlyConfigured("BACKSTAGE_DATABASES must not define 'default'")
    missing = set(BACKSTAGE_APP_DATABASES.values()) - set(databases)
    if missing:
        raise ImproperlyConfigured(f"BACKSTAGE_DATABASES lacks {', '.join(sorted(missing))}")
    return databases


DATABASES = {"default": {}, **_logical_databases()}
DATABASE_ROUTERS = ["storefront.routers.LogicalDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Static and media files (served by nginx, never by Django in production) -----------------
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("BACKSTAGE_STATIC_ROOT", str(LOCAL_VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("BACKSTAGE_MEDIA_ROOT", str(LOCAL_VAR_DIR / "media"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Production hardening --------------------------------------------------------------------
# nginx terminates TLS (when there is any) and must *set* X-Forwarded-Proto, never pass a
# client's value through. SSL redirect, HSTS and secure cookies are left off on purpose: the
# sandbox and test fleet speak plain HTTP, so `check --deploy` reports them as warnings.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_COOKIE_HTTPONLY = True

# Errors go to stderr, which uWSGI's `logto` captures; Django's default would drop them when
# DEBUG is off and no ADMINS are configured.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # Replaces Django's DEBUG-only console handler, which would print everything twice.
    "loggers": {"django": {"handlers": [], "level": "WARNING"}},
}
