"""The board: people only (users database)."""

from common.settings import *
from common.settings import SHARED_APPS, databases_for

INSTALLED_APPS = [*SHARED_APPS, "people"]
ROOT_URLCONF = "board.urls"
APP_DATABASES = {"people": "users"}
DATABASES = databases_for(APP_DATABASES)
