"""The API: greetings only (greetings database)."""

from common.settings import *
from common.settings import SHARED_APPS, databases_for

INSTALLED_APPS = [*SHARED_APPS, "greetings"]
ROOT_URLCONF = "api.urls"
APP_DATABASES = {"greetings": "greetings"}
DATABASES = databases_for(APP_DATABASES)
