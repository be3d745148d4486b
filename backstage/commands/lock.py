"""Commands that take and release a production's deploy lock on a host.

``mkdir`` is atomic: of two deploys racing for the lock exactly one creates the directory. The
holder's details go in ``info.json`` inside it; a release removes the lock only when the token
in it is the releaser's own, so a deploy never frees someone else's lock.
"""

import json

from backstage.commands.shell import Script, argv, q
from backstage.model import Layout

LOCKED_EXIT = 75


def acquire(script: Script, layout: Layout, info: dict) -> Script:
    script.step("lock")
    script.raw(f"if ! mkdir {q(layout.lock_dir)} 2>/dev/null; then "
               f"echo \"deploy lock held: $(cat {q(layout.lock_info)} 2>/dev/null)\" >&2; "
               f"exit {LOCKED_EXIT}; fi")
    return script.write_file(layout.lock_info, json.dumps(info, sort_keys=True))


def release(script: Script, layout: Layout, token: str) -> Script:
    """Remove the lock if this token holds it."""
    return script.raw(f"if grep -qF {q(token)} {q(layout.lock_info)} 2>/dev/null; then "
                      f"{argv('rm', '-rf', layout.lock_dir)}; fi")


def force_release(script: Script, layout: Layout) -> Script:
    return script.step("unlock").run("rm", "-rf", layout.lock_dir)
