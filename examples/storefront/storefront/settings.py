"""Settings for the storefront example act: plain Django settings, with nothing of Backstage.

Deployed by Backstage, its settings overlay sets what the deployment owns (``DATABASES`` for the
logical databases ``users`` and ``greetings``, ``ALLOWED_HOSTS``, ``STATIC_ROOT``,
``MEDIA_ROOT``...). Run anywhere else, these apply:

=========================  =========================================================================
DJANGO_SECRET_KEY          required unless DJANGO_DEBUG=1 (then an insecure dev key is used)
DJANGO_DEBUG               "1" turns DEBUG on; anything else (or unset) means off
DJANGO_ALLOWED_HOSTS       comma-separated host names (default "localhost,127.0.0.1")
STOREFRONT_DATA_DIR        where the sqlite files go (default: beside manage.py)
STOREFRONT_STATIC_ROOT     collectstatic target (default var/static beside manage.py)
=========================  =========================================================================

Migrations run per database, never against ``default``::

    python manage.py migrate --database users
    python manage.py migrate --database greetings

``default`` is deliberately Django's dummy backend: any query or ``migrate`` that reaches it fails
loudly instead of silently creating a third database.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Scratch directory for local development (collected static files, media).
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
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if host.strip()
]

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
# Which database each app label lives in; storefront.routers.LogicalDatabaseRouter reads it.
APP_DATABASES = {
    "people": "users",
    "greetings": "greetings",
}
DATA_DIR = Path(os.environ.get("STOREFRONT_DATA_DIR", BASE_DIR))
DATABASES = {
    "default": {},
    **{
        name: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / f"{name}.sqlite3")}
        for name in sorted(set(APP_DATABASES.values()))
    },
}
DATABASE_ROUTERS = ["storefront.routers.LogicalDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Static and media files (served by nginx, never by Django in production) -----------------
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STOREFRONT_STATIC_ROOT", str(LOCAL_VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = str(LOCAL_VAR_DIR / "media")

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
