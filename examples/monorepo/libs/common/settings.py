"""Settings every service of the monorepo shares; each service's settings add its apps.

Plain Django settings, with nothing of Backstage: deployed, Backstage's settings overlay sets
the databases, allowed hosts and static root. A service's settings module does::

    from common.settings import *  # noqa: F403
    INSTALLED_APPS = [*SHARED_APPS, "people"]
    APP_DATABASES = {"people": "users"}
    DATABASES = databases_for(APP_DATABASES)
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (or DJANGO_DEBUG=1)")
    SECRET_KEY = "django-insecure-monorepo-local-development-key"

ALLOWED_HOSTS = ["localhost"]
SHARED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASE_ROUTERS = ["common.routers.LogicalDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
STATIC_ROOT = str(Path(__file__).parents[2] / "var" / "static")
USE_TZ = True
SECURE_CONTENT_TYPE_NOSNIFF = True


def databases_for(app_databases: dict[str, str]) -> dict:
    """Django's DATABASES: one sqlite file per database the apps live in (beside the
    repository's top folders, or in MONOREPO_DATA_DIR), and a dummy ``default``."""
    folder = Path(os.environ.get("MONOREPO_DATA_DIR", Path(__file__).parents[3]))
    return {"default": {}, **{name: {"ENGINE": "django.db.backends.sqlite3",
                                     "NAME": str(folder / f"{name}.sqlite3")}
                              for name in sorted(set(app_databases.values()))}}
