"""Settings every service of the monorepo shares; each service's settings add its apps.

Everything host-specific comes from the environment Backstage gives an act (see the
storefront example's settings for the whole contract). A service's settings module does::

    from common.settings import *  # noqa: F403
    INSTALLED_APPS = [*SHARED_APPS, "people"]
    BACKSTAGE_APP_DATABASES = {"people": "users"}
    DATABASES = databases_for(BACKSTAGE_APP_DATABASES)
"""

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (or DJANGO_DEBUG=1)")
    SECRET_KEY = "django-insecure-monorepo-local-development-key"

ALLOWED_HOSTS = [h for h in os.environ.get("BACKSTAGE_ALLOWED_HOSTS", "localhost").split(",") if h]
BACKSTAGE_RELEASE = os.environ.get("BACKSTAGE_RELEASE", "dev")
SHARED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASE_ROUTERS = ["common.routers.LogicalDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("BACKSTAGE_STATIC_ROOT", "/tmp/monorepo-static")
USE_TZ = True
SECURE_CONTENT_TYPE_NOSNIFF = True


def databases_for(app_databases: dict[str, str]) -> dict:
    """Django's DATABASES: the logical databases Backstage maps, and a dummy ``default``."""
    raw = os.environ.get("BACKSTAGE_DATABASES")
    if raw:
        databases = json.loads(raw)
    else:  # local development: sqlite files in var/
        folder = Path(os.environ.get("BACKSTAGE_DATA_DIR", Path(__file__).parents[2] / "var"))
        folder.mkdir(parents=True, exist_ok=True)
        databases = {name: {"ENGINE": "django.db.backends.sqlite3",
                            "NAME": str(folder / f"{name}.sqlite3")}
                     for name in set(app_databases.values())}
    missing = set(app_databases.values()) - set(databases)
    if missing:
        raise ImproperlyConfigured(f"BACKSTAGE_DATABASES lacks {', '.join(sorted(missing))}")
    return {"default": {}, **databases}
