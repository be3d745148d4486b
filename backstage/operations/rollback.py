"""Plan ``rollback`` on one host: revive a previous good release's vassal and switch to it.

Nothing is rebuilt: the release's code, venue and vassal file are still on the host (the
vassal file kept as ``*.ini.retired`` when the release was retired).
"""

from collections.abc import Callable

from backstage.commands import history, lock
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.health import health_spec
from backstage.operations.releases import rollback_target
from backstage.operations.steps import Step


def plan_rollback(production: Production, host: str, layout: Layout, observed: Observed,
                  act: str, wanted: str | None, lock_info: dict,
                  before_switch: Callable[[Script], Script] | None = None
                  ) -> tuple[str, list[Step]]:
    """The release to go back to, and the one step that does it (``before_switch``: what
    it does first, under the lock: migrating back, see :mod:`backstage.operations.schema`)."""
    locks = [lock.act_lock(act)]
    checks.stage_ready(host, observed)
    checks.not_locked(host, observed, locks)
    target = rollback_target(host, observed, act, wanted)
    current = observed.current_release(act)
    script = lock.acquire(Script(), layout, locks, lock_info)
    if before_switch:
        before_switch(script)
    switch_back(script, production, host, layout, act, target)
    sess_cmd.retire(script, layout, act, [r for r in observed.vassal_releases(act) if r != target])
    history.append(script, layout, {"time": lock_info["time"], "event": "rollback", "act": act,
                                    "release": target, "previous": current, "by": lock_info["by"]})
    lock.release(script, layout, locks, lock_info["token"])
    return target, [Step("rollback", f"switch {act} back from {current} to {target}",
                         script.text())]


def switch_back(script: Script, production: Production, host: str, layout: Layout, act: str,
                target: str) -> Script:
    """Revive a release that was live before, health-check it through its socket, switch."""
    sess_cmd.revive(script, layout, act, target)
    sess_cmd.health_check(script, layout, production.hosts[host].python, act, target,
                          health_spec(production, act))
    return sess_cmd.switch(script, layout, act, target)
