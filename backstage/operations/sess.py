"""``start``, ``stop`` and ``restart`` of an act's live release on one host, under the act's
lock (never while a deploy or rollback of it runs)."""

from backstage.commands import history
from backstage.commands import lock as lock_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.errors import BackstageError
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.health import health_spec
from backstage.operations.steps import Step

ACTIONS = ("start", "stop", "restart")


def live_release(host: str, observed: Observed, act: str) -> str:
    release = observed.current_release(act)
    if release is None:
        raise BackstageError(f"{host}: {act} was never deployed here")
    return release


def plan_sess(production: Production, host: str, layout: Layout, observed: Observed, act: str,
              action: str, holder: dict, workers: list[int] = ()) -> Step:
    """The one step of ``action`` on the act's live release; ``workers``: for ``restart``, the
    pids of the workers it replaces (it waits until none is left)."""
    release = live_release(host, observed, act)
    locks = [lock_cmd.act_lock(act)]
    checks.not_locked(host, observed, locks)
    python = production.hosts[host].python
    script = lock_cmd.acquire(Script(), layout, locks, holder)
    if action == "stop":
        sess_cmd.stop(script, layout, python, act, release)
    elif action == "start":
        sess_cmd.start(script, layout, act, release)
        sess_cmd.health_check(script, layout, python, act, release, health_spec(production, act))
    else:
        sess_cmd.restart(script, layout, act, release)
        sess_cmd.wait_reloaded(script, python, layout, act, release, list(workers))
    history.append(script, layout, {"time": holder["time"], "event": action, "act": act,
                                    "release": release, "by": holder["by"]})
    lock_cmd.release(script, layout, locks, holder["token"])
    return Step(action, "", script.text())
