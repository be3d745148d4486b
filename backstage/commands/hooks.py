"""Commands that run an act's host hooks (``after_prepare``, ``before_switch``,
``after_switch``) in a new release, as the act runs: its user, its env file with its secrets
(read by the act's own shell, never in argv), its working directory, its venue's programs
first on the ``PATH``; the deploy's ``BACKSTAGE_*`` variables besides."""

from backstage.commands import history
from backstage.commands.manage import SYSTEM_PATH
from backstage.commands.release import Manage, act_function
from backstage.commands.shell import STEP_MARKER, Script, argv, q
from backstage.model import Layout, RunAs


def host_hook(script: Script, layout: Layout, act: str, release: str, manage: Manage,
              run_as: RunAs | None, venue_dir: str, name: str, command: str,
              variables: dict[str, str], record: dict, fatal: bool) -> Script:
    """Run hook ``name``; when it fails, history gets ``record`` (naming the hook), and
    the script stops (``fatal``: the step fails, as any failed step does) or goes on, the
    failure announced as a skipped step (``<name> hook: skipped (...)``), which is reported.
    Its output goes to stderr: a step's stdout is the step's answer."""
    script.step(f"{name} hook")
    script.raw(act_function("hook_as_act", layout, act, release, manage, run_as))
    words = [f"{k}={v}" for k, v in variables.items()]
    words += [f"PATH={venue_dir}/bin:{SYSTEM_PATH}", f"VIRTUAL_ENV={venue_dir}"]
    script.raw(f"if hook_as_act /usr/bin/env {argv(*words)} /bin/bash -c {q(command)} >&2; "
               "then hook_status=0; else hook_status=$?; fi")
    script.raw('if [ "$hook_status" != 0 ]; then')
    history.append(script, layout, {**record, "event": "hook failed", "hook": name})
    if fatal:
        script.raw(f"printf '%s\\n' {q(f'the {name} hook failed, exit')}\" $hook_status\" >&2; "
                   "exit 1")
    else:
        said = f"{STEP_MARKER}{name} hook: skipped (it failed, exit "
        script.raw(f"printf '%s\\n' {q(said)}\"$hook_status; the switch is kept)\" >&2")
    return script.raw("fi")
