"""Programs that run on a host: standard-library Python only, never imported by Backstage's
other layers except through :func:`program`.

``hostside.py`` (the deploy stack's probe, health checks and state changes) and
``venueside.py`` (the venue API's) share ``core.py``. Each imports what it uses of it with one
``from backstage.remote.core import ...`` statement; :func:`program` replaces that statement by
the text of ``core.py``, so what a host runs is a single file that needs nothing installed.
"""

import re
from functools import cache
from importlib import resources

CORE_IMPORT = re.compile(r"^from backstage\.remote\.core import (\([^)]*\)|[^\n(]*)[^\n]*\n",
                         re.MULTILINE)


def _source(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")


# Modules a standalone program imports, joined into its text where it imports them.
JOINED = {name: re.compile(rf"^from backstage\.remote\.{name} import [^\n]*\n", re.MULTILINE)
          for name in ("migrating", "migrations")}


@cache
def standalone(name: str) -> str:
    """The text of a host-side program that uses nothing of the core (``managesteps``), with
    ``migrating.py`` (what it asks of Django and sqlite) and ``migrations.py`` (the
    classification of migrations) joined in where it imports them."""
    text = _source(name)
    for module, line in JOINED.items():
        text = line.sub(lambda _, module=module: _source(module) + "\n\n", text)
    return text


@cache
def program(name: str) -> str:
    """The text of the host-side program ``name`` with ``core.py`` joined in."""
    text = _source(name)
    if len(CORE_IMPORT.findall(text)) != 1:
        raise RuntimeError(f"backstage/remote/{name}.py: expected one import of the core")
    core = _source("core")
    return CORE_IMPORT.sub(lambda _: core + "\n\n", text)
