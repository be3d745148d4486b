"""The shapes of the values an inventory may hold.

Names become directory names, vassal names, nginx file names and (later) unix user names, so
they are kept to one safe alphabet. Every check here is a pure function that raises
``ValueError`` with the reason a user reads after the file and key.
"""

import ipaddress
import re

NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
DOMAIN_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
INTERPRETER_RE = re.compile(r"[A-Za-z0-9_./+-]+")
SIZE_RE = re.compile(r"[0-9]{1,6}[kmg]?")
UNIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Accounts an act must never run as: root, and the system's usual service and nobody accounts.
RESERVED_USERS = {"root", "daemon", "bin", "sys", "nobody", "www-data", "nginx", "sshd",
                  "postgres"}
RESERVED_ENV_PREFIXES = ("BACKSTAGE_", "UWSGI_")
RESERVED_ENV_KEYS = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PATH", "HOME"}


def name(value: str) -> str:
    """A production, host, venue, act, gig, role or database name."""
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"bad name {value!r}: use a-z, 0-9 and '-', start with a letter, at most 40 characters"
        )
    return value


def domain(value: str) -> str:
    """A DNS name an nginx ``server_name`` can hold (lower case, no wildcard, no port)."""
    labels = value.split(".")
    if len(value) > 253 or not all(DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(f"bad domain {value!r}: use lower-case DNS labels separated by dots")
    return value


def gig_domain(value: str) -> str:
    """A domain a gig is booked at: a DNS name, or a wildcard ``*.`` and one."""
    try:
        domain(value.removeprefix("*."))
    except ValueError:
        raise ValueError(f"bad domain {value!r}: use lower-case DNS labels separated by dots, "
                         "the first may be a wildcard *") from None
    return value


def ipv4(value: str) -> str:
    """An IPv4 address, as an A record holds it."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"bad IPv4 address {value!r}") from None


def ipv6(value: str) -> str:
    """An IPv6 address, in the compressed form PowerDNS answers with."""
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        raise ValueError(f"bad IPv6 address {value!r}") from None


def env_key(value: str) -> str:
    """An environment variable name an act may set."""
    if not ENV_KEY_RE.fullmatch(value):
        raise ValueError(f"bad environment variable name {value!r}")
    if value in RESERVED_ENV_KEYS or value.startswith(RESERVED_ENV_PREFIXES):
        raise ValueError(f"environment variable {value!r} is set by Backstage itself")
    return value


def unix_user(value: str) -> str:
    """A unix account an act runs as: a portable name, not root or a shared service account."""
    if not UNIX_USER_RE.fullmatch(value):
        raise ValueError(f"bad user name {value!r}: use a-z, 0-9, '_' and '-', start with a "
                         "letter or '_', at most 32 characters")
    if value in RESERVED_USERS:
        raise ValueError(f"user {value!r} is a system account: an act needs a user of its own")
    return value


def env_value(value: str) -> str:
    """An environment value: one line, since the env file holds one ``KEY=value`` per line."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError("environment values must be one line without NUL characters")
    return value


def dotted(value: str) -> str:
    """A Python module path such as ``storefront.settings``."""
    if not DOTTED_RE.fullmatch(value):
        raise ValueError(f"bad Python module path {value!r}")
    return value


def database_alias(value: str) -> str:
    """A key of Django's ``DATABASES``: it becomes ``migrate --database`` on a host."""
    if not ENV_KEY_RE.fullmatch(value) and not NAME_RE.fullmatch(value):
        raise ValueError(f"bad database alias {value!r}: use letters, digits, '_' and '-'")
    return value


def wsgi_callable(value: str) -> str:
    """``module.path:callable``, as uWSGI's ``module`` option takes it."""
    module, sep, attribute = value.partition(":")
    if not sep or not DOTTED_RE.fullmatch(module) or not ENV_KEY_RE.fullmatch(attribute):
        raise ValueError(f"bad WSGI callable {value!r}: expected 'package.module:callable'")
    return value


def interpreter(value: str) -> str:
    """A Python interpreter: a command name on the host's PATH or an absolute path."""
    if not INTERPRETER_RE.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(f"bad interpreter {value!r}: a command name or an absolute path")
    return value


def absolute_path(value: str) -> str:
    """An absolute path on a host, without ``..`` or characters that need care in shells."""
    if not value.startswith("/") or ".." in value.split("/") or not INTERPRETER_RE.fullmatch(value):
        raise ValueError(f"bad path {value!r}: an absolute path of letters, digits and ._+-/")
    return value.rstrip("/") or "/"


def relative_file(value: str) -> str:
    """A file inside a release, such as ``manage.py``: no ``..``, ``.`` or empty parts."""
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError(f"bad path {value!r}: a path inside the act's source, without '..'")
    return value


def relative_dir(value: str) -> str:
    """A folder inside the repository, such as ``services/shop`` (``.``: the repository).

    Letters, digits and ``._+-/`` only: the value lands in uWSGI's config, whose ``%``, ``$``
    and ``@`` would otherwise be expanded.
    """
    if value == ".":
        return value
    if not INTERPRETER_RE.fullmatch(value) or any(
            part in ("", ".", "..") for part in value.split("/")):
        raise ValueError(f"bad folder {value!r}: a relative path inside the repository "
                         "(letters, digits and ._+-/, no '..'), or '.'")
    return value


def url_prefix(value: str) -> str:
    """A URL path prefix such as ``/static/``: starts and ends with a slash."""
    parts = value.strip("/").split("/")
    if not (value.startswith("/") and value.endswith("/") and len(value) > 1):
        raise ValueError(f"bad URL prefix {value!r}: it must start and end with '/'")
    if any(part in ("", ".", "..") or not INTERPRETER_RE.fullmatch(part) for part in parts):
        raise ValueError(f"bad URL prefix {value!r}")
    return value


URL_PATH_RE = re.compile(r"/[A-Za-z0-9_./?=&%~:@!$'()*+,;-]{0,500}")


def url_path(value: str) -> str:
    """A request's path (with its query), as sent: starts with '/', URL characters only."""
    if not URL_PATH_RE.fullmatch(value):
        raise ValueError(f"bad request path {value!r}: it must start with '/' and hold only "
                         "URL characters (no spaces; percent-encode the rest)")
    return value


def list_of_tables(value):
    """A list of inline tables (``key = [{ ... }, ...]``), before its tables are read."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a list of tables, such as [{ path = \"/\" }]")
    return value


def body_size(value: str) -> str:
    """An nginx size such as ``10m``."""
    if not SIZE_RE.fullmatch(value):
        raise ValueError(f"bad size {value!r}: a number with an optional k, m or g")
    return value


SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size_bytes(value: str) -> int:
    """Bytes in a size such as ``50m`` (k, m, g: binary units, as nginx reads them)."""
    body_size(value)
    return int(value.rstrip("kmg")) * SIZE_UNITS.get(value[-1], 1)


def log_size(value: str) -> str:
    """A size past which a log is rotated: at least ``1k``, so a log is not rotated at every
    line."""
    if size_bytes(value) < 1024:
        raise ValueError(f"log size {value!r} is too small: at least 1k")
    return value


def share(value):
    """A share of requests: ``"1%"`` (a percentage) or a fraction from 0 to 1 (``0.01``)."""
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or not 0 <= number <= 1:
        raise ValueError(f"bad share {value!r}: a percentage such as \"1%\", or a fraction "
                         "from 0 to 1")
    return number
