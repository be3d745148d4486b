"""``manage`` and ``exec``: one command of the user's in an act's live release, as the act."""

from backstage.commands.release import Manage, act_function
from backstage.commands.sess import RETIRED_SUFFIX, STOPPED_SUFFIX
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, RunAs

# The PATH of ``exec``: the venue's programs first (``python`` is the act's), then the system's.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def live_venue(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Set ``$venue`` to the venue the release's vassal runs (its ``virtualenv``), whether the
    vassal is enabled, stopped or retired: a rollback may have gone back to an older venue."""
    vassal = layout.vassal(act, release)
    files = argv(vassal, vassal + STOPPED_SUFFIX, vassal + RETIRED_SUFFIX)
    script.raw("venue=")
    script.raw(f'for f in {files}; do if [ -f "$f" ]; then '
               "venue=$(sed -n 's/^virtualenv = //p' \"$f\"); break; fi; done")
    missing = f"{act}@{release}: no vassal file says which venue the release runs"
    return script.raw(f"[ -n \"$venue\" ] || {{ printf '%s\\n' {q(missing)} >&2; exit 1; }}")


def in_release(layout: Layout, act: str, release: str, manage: Manage, run_as: RunAs | None,
               words: list[str], django: bool) -> str:
    """Run ``words`` in the release as its vassal runs the app (``manage``: environment, import
    path, working directory): manage.py's arguments (``django``) or a whole command, with the
    venue's programs first on the PATH. The remote exit status is the command's; the env file
    is read by the act's own shell, never in argv."""
    script = live_venue(Script(), layout, act, release)
    script.raw(act_function("in_act", layout, act, release, manage, run_as))
    if django:
        program = f'"$venue/bin/python" {q(layout.in_release(act, release, manage.manage))}'
    else:
        program = f'/usr/bin/env "PATH=$venue/bin:{SYSTEM_PATH}" "VIRTUAL_ENV=$venue"'
    return script.raw(f"in_act {program} {argv(*words)}".rstrip()).text()
