"""Commands layer: every piece of shell text Backstage sends to a host is built here.

Builders are pure functions of the model, the layout and plain values; they return command
text (or add lines to a :class:`~backstage.commands.shell.Script`) and never run anything, so
they are unit-tested without SSH. Every value passes through :func:`shlex.quote`.
"""

import json

from backstage.commands.shell import Script, argv, q
from backstage.model import Layout
from backstage.remote import program
from backstage.util import sha256

HOSTSIDE_SOURCE = program("hostside")
HOSTSIDE_VERSION = sha256(HOSTSIDE_SOURCE)[:16]
# Exit status of a command that found this version's helper not installed on the host.
HELPER_MISSING = 86


def hostside_path(layout: Layout) -> str:
    """Where a stage keeps the helper of this Backstage version.

    The hash of the helper's source is in the file name, so a host never runs a helper other
    than the one this version of Backstage would send.
    """
    return f"{layout.stage}/hostside-{HOSTSIDE_VERSION}.py"


def _arguments(verb: str, spec: dict) -> str:
    return argv(verb, json.dumps(spec, sort_keys=True))


def hostside(layout: Layout, python: str, verb: str, spec: dict) -> str:
    """Run the stage's installed helper (standard library only) with the host's Python."""
    return f"{argv(python, hostside_path(layout))} {_arguments(verb, spec)}"


def hostside_if_installed(layout: Layout, python: str, verb: str, spec: dict) -> str:
    """Run the installed helper, or exit :data:`HELPER_MISSING` when it is not there."""
    script = Script().raw(f"[ -f {q(hostside_path(layout))} ] || exit {HELPER_MISSING}")
    return script.raw(hostside(layout, python, verb, spec)).text()


def install_hostside(layout: Layout, python: str, verb: str, spec: dict) -> str:
    """Install the helper read from stdin (:data:`HOSTSIDE_SOURCE`), then run it.

    Written beside its path (a name of this process's own, as two deploys may install it at
    once) and renamed, so the path never holds a partial file; other versions' helpers go.
    """
    path = hostside_path(layout)
    script = Script().mkdirs([layout.stage])
    tmp = f"{q(path + '.backstage-new.')}$$"
    script.raw(f"cat > {tmp}")
    script.raw(f"mv -f {tmp} {q(path)}")
    script.run("find", layout.stage, "-maxdepth", "1", "-name", "hostside-*.py",
               "!", "-name", path.rsplit("/", 1)[1], "-delete")
    return script.raw(hostside(layout, python, verb, spec)).text()


def hostside_inline(python: str, verb: str, spec: dict) -> str:
    """Run the helper sent whole in the command: for read-only runs on a host that does not
    have it installed, which must write nothing there."""
    return f"{argv(python, '-c', HOSTSIDE_SOURCE)} {_arguments(verb, spec)}"


__all__ = ["Script", "argv", "hostside", "q"]
