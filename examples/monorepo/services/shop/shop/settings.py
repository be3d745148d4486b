"""The shop: people (users database) and greetings (greetings database)."""

from common.settings import *
from common.settings import SHARED_APPS, databases_for

INSTALLED_APPS = [*SHARED_APPS, "people", "greetings"]
ROOT_URLCONF = "shop.urls"
APP_DATABASES = {"people": "users", "greetings": "greetings"}
DATABASES = databases_for(APP_DATABASES)
