"""Commands that take an act off a host for good (``remove-act``): its vassals stopped and
their files gone, what Backstage made for it removed, its unix user deleted.

What the act wrote (its media, its working folder, its sqlite files) is kept unless purged;
kept files become root's when the act's user goes, so a user made later with the same uid
does not inherit them.
"""

from backstage.commands import hostside
from backstage.commands.sess import RETIRED_SUFFIX, STOPPED_SUFFIX
from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import rescan_emperor
from backstage.model import Layout

STOP_SECONDS = 30


def stop_vassals(script: Script, layout: Layout, python: str, act: str,
                 releases: list[str]) -> Script:
    """Remove every vassal file of the act (enabled, stopped, retired): the Emperor stops
    them; then wait until nothing listens on their sockets."""
    if not releases:
        return script
    script.step("stop")
    files = [layout.vassal(act, r) + s for r in releases for s in ("", STOPPED_SUFFIX,
                                                                   RETIRED_SUFFIX)]
    script.run("rm", "-f", "--", *files)
    rescan_emperor(script, layout)
    for release in releases:
        script.raw(hostside(layout, python, "closed", {
            "socket": layout.socket(act, release), "timeout": STOP_SECONDS,
            "message": f"{act}@{release} did not stop within {STOP_SECONDS} s"}))
    return script


def give_to_root(script: Script, paths: list[str]) -> Script:
    """Make kept files root's, not following links (``chown -R`` walks none, ``-h`` changes
    a link itself)."""
    for path in paths:
        script.raw(f"if [ -e {q(path)} ] || [ -L {q(path)} ]; then "
                   f"{argv('chown', '-R', '-h', 'root:root', path)}; fi")
    return script


def delete_user(script: Script, user: str) -> Script:
    """Delete the act's unix user and its own group (its processes are gone by now)."""
    script.step("user")
    script.raw(f"if id -u {q(user)} >/dev/null 2>&1; then {argv('userdel', user)}; fi")
    return script.raw(f"if getent group {q(user)} >/dev/null; then {argv('groupdel', user)}; fi")
