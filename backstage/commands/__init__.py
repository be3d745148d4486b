"""Commands layer: every piece of shell text Backstage sends to a host is built here.

Builders are pure functions of the model, the layout and plain values; they return command
text (or add lines to a :class:`~backstage.commands.shell.Script`) and never run anything, so
they are unit-tested without SSH. Every value passes through :func:`shlex.quote`.
"""

import json
from importlib import resources

from backstage.commands.shell import Script, argv, q

HOSTSIDE_SOURCE = resources.files("backstage.commands").joinpath("remote/hostside.py").read_text()


def hostside(python: str, verb: str, spec: dict, script: Script | None = None) -> str:
    """Run Backstage's host-side helper (standard library only) with the host's Python.

    Inside a script the helper's source is defined once as a variable, so a script that calls
    it many times stays far below the kernel's limit on the length of one argument.
    """
    arguments = argv(verb, json.dumps(spec, sort_keys=True))
    if script is None:
        return f"{argv(python, '-c', HOSTSIDE_SOURCE)} {arguments}"
    return f"{q(python)} -c {script.define('BACKSTAGE_HOSTSIDE', HOSTSIDE_SOURCE)} {arguments}"


__all__ = ["Script", "argv", "hostside", "q"]
