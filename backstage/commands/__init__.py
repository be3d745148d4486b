"""Commands layer: every piece of shell text Backstage sends to a host is built here.

Builders are pure functions of the model, the layout and plain values; they return command
text (or add lines to a :class:`~backstage.commands.shell.Script`) and never run anything, so
they are unit-tested without SSH. Every value passes through :func:`shlex.quote`.
"""

import json
from importlib import resources

from backstage.commands.shell import Script, argv, q

HOSTSIDE_SOURCE = resources.files("backstage.commands").joinpath("remote/hostside.py").read_text()


def hostside(python: str, verb: str, spec: dict) -> str:
    """Run Backstage's host-side helper (standard library only) with the host's Python."""
    return argv(python, "-c", HOSTSIDE_SOURCE, verb, json.dumps(spec, sort_keys=True))


__all__ = ["Script", "argv", "hostside", "q"]
