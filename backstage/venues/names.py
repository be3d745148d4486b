"""Names of venues and acts in the Python API, and the identifiers derived from them.

The API keeps the case a user gives (``new_venue('MyVenue', ...)`` makes ``MyVenue/``), so it
accepts ``[A-Za-z][A-Za-z0-9-]{0,39}``: the inventory alphabet plus capitals. Wherever a name
becomes an identifier (vassal file, socket, log, database, sqlite file, port record key) its
lower-case *slug* is used, which is a valid inventory name; two acts of one venue whose slugs are
equal clash and the second is refused. The act's Python package is the slug with ``-`` turned
into ``_``; it must not shadow a module the act imports (the standard library, Django, uWSGI).
"""

import keyword
import re
import sys

from backstage.model import names

API_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")
# Modules an act's package must not shadow, beyond the standard library's.
TAKEN_MODULES = {"django", "uwsgi", "uwsgidecorators", "asgiref", "sqlparse", "backstage",
                 "pip", "setuptools", "pkg_resources", "tests"}


def api_name(value, kind: str = "name") -> str:
    """A venue or act name as the API accepts it; ValueError naming the rule otherwise."""
    if not isinstance(value, str) or not API_NAME_RE.fullmatch(value):
        raise ValueError(
            f"bad {kind} {value!r}: use letters, digits and '-', start with a letter, "
            "at most 40 characters"
        )
    return value


def slug(value: str) -> str:
    """The lower-case form used for files, sockets, vassals and databases."""
    return names.name(value.lower())


def module_name(value: str) -> str:
    """The Python package of an act called ``value`` (``My-Act`` -> ``my_act``)."""
    module = slug(value).replace("-", "_")
    if keyword.iskeyword(module) or module in sys.stdlib_module_names or module in TAKEN_MODULES:
        raise ValueError(
            f"bad act name {value!r}: its Python package {module!r} would shadow a module of "
            "the same name; choose another name"
        )
    return module


def act_name(value) -> str:
    """An act name: the API alphabet and a usable Python package."""
    api_name(value, "act name")
    module_name(value)
    return value
