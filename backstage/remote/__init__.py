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


MIGRATIONS_IMPORT = re.compile(r"^from backstage\.remote\.migrations import [^\n]*\n",
                               re.MULTILINE)


@cache
def standalone(name: str) -> str:
    """The text of a host-side program that uses nothing of the core (``managesteps``), with
    the classification of migrations (``migrations.py``) joined in where it imports it."""
    return MIGRATIONS_IMPORT.sub(lambda _: _source("migrations") + "\n\n", _source(name))


@cache
def program(name: str) -> str:
    """The text of the host-side program ``name`` with ``core.py`` joined in."""
    text = _source(name)
    if len(CORE_IMPORT.findall(text)) != 1:
        raise RuntimeError(f"backstage/remote/{name}.py: expected one import of the core")
    core = _source("core")
    return CORE_IMPORT.sub(lambda _: core + "\n\n", text)
