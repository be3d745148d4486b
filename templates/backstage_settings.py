"""Deployment settings, written by Backstage into each release: the act's own settings module
(BACKSTAGE_SETTINGS), then what the deployment owns, from the act's environment. Turn it off
with `settings_overlay = false` on the act; override it with templates/backstage_settings.py.
"""

import importlib as _importlib
import json as _json
import os as _os

_project = _importlib.import_module(_os.environ["BACKSTAGE_SETTINGS"])
globals().update({_k: _v for _k, _v in vars(_project).items() if _k.isupper()})


def _listed(name):
    return [value for value in _os.environ.get(name, "").split(",") if value]


_RELEASE = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))


def _in_release(name):
    """A path relative to the working directory (the project's root) or inside the release:
    nothing the act writes there outlives a deploy (and in the system layout it is root's)."""
    path = _os.path.abspath(str(name))
    return _os.path.commonpath([path, _RELEASE]) == _RELEASE


def _sqlite_name(name):
    """A project's own sqlite file where it outlives the release: under the act's data
    folder, at its path in the release."""
    name = str(name)
    if not name or name == ":memory:" or name.startswith("file:") or not _in_release(name):
        return name
    moved = _os.path.join(_os.environ["BACKSTAGE_ACT_DATA_DIR"],
                          _os.path.relpath(_os.path.abspath(name), _RELEASE))
    _os.makedirs(_os.path.dirname(moved), exist_ok=True)
    return moved


def _databases(project):
    ours = _json.loads(_os.environ.get("BACKSTAGE_DATABASES") or "{}")
    databases = {alias: dict(entry) for alias, entry in project.items()}
    for alias, entry in databases.items():
        if alias not in ours and "sqlite" in str(entry.get("ENGINE", "")):
            entry["NAME"] = _sqlite_name(entry.get("NAME", ""))
    for alias, entry in ours.items():
        # The project's own choices (ATOMIC_REQUESTS, CONN_MAX_AGE, TEST...) stay; where it
        # is and how to reach it are ours, and its OPTIONS only suit its own engine.
        theirs = {k: v for k, v in databases.get(alias, {}).items()
                  if k not in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
                  or (k == "OPTIONS" and databases[alias].get("ENGINE") == entry["ENGINE"])}
        databases[alias] = {**theirs, **entry}
    databases.setdefault("default", {})
    return databases


def _logging(config):
    """The project's logging, with a file handler that would write into the release logging
    to stderr instead (uWSGI writes it to the act's log)."""
    config = dict(config)
    handlers = {name: dict(handler) for name, handler in config.get("handlers", {}).items()}
    for name, handler in handlers.items():
        if handler.get("filename") and _in_release(handler["filename"]):
            handlers[name] = {"class": "logging.StreamHandler",
                              **{k: v for k, v in handler.items()
                                 if k in ("level", "formatter", "filters")}}
    return {**config, "handlers": handlers} if handlers else config


DATABASES = _databases(globals().get("DATABASES", {}))
ALLOWED_HOSTS = _listed("BACKSTAGE_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = list(dict.fromkeys([*globals().get("CSRF_TRUSTED_ORIGINS", []),
                                           *_listed("BACKSTAGE_CSRF_TRUSTED_ORIGINS")]))
STATIC_ROOT = _os.environ["BACKSTAGE_STATIC_ROOT"]
MEDIA_ROOT = _os.environ["BACKSTAGE_MEDIA_ROOT"]
STATIC_URL = _os.environ.get("BACKSTAGE_STATIC_URL", globals().get("STATIC_URL"))
MEDIA_URL = _os.environ.get("BACKSTAGE_MEDIA_URL", globals().get("MEDIA_URL", ""))
SECRET_KEY = _os.environ.get("DJANGO_SECRET_KEY") or globals().get("SECRET_KEY", "")
if isinstance(globals().get("LOGGING"), dict):
    LOGGING = _logging(LOGGING)  # noqa: F821 (the project's, copied above)
# nginx sets X-Forwarded-Proto on every request; it never passes a client's own.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
