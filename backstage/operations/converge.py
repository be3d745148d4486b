"""``converge``: bring every host of an act to one health-checked release, after a rollout
was cut short (killed, disconnected) and left the fleet split or its locks behind.

Which release: the one the abandoned rollout was bringing (its intent, in the lock its gone
holder left; else the newest of the live releases) if it passed its checks everywhere it
went live (recorded good there after its checks through nginx and its bake) and failed on no
host: then forward, by the deploy of that very release (the workstation's code must be its
code: the deploy resumes it, see :func:`backstage.operations.deploy.resumed_release`).
Otherwise back: every host on the release the others kept, revived, health-checked and
switched to, the abandoned locks taken over and freed.
"""

from dataclasses import dataclass

from backstage.commands import history, lock
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.releases import rollback_target
from backstage.operations.rollback import switch_back
from backstage.operations.steps import Step


@dataclass
class Convergence:
    """Where every host of the act goes: ``target`` (None: nowhere to go, all on one
    release), forward (a deploy of it) or back, and why, in one line."""

    target: str | None
    forward: bool
    why: str


def abandoned(act: str, observed: dict[str, Observed], locks: list[str]) -> list[str]:
    """The releases abandoned deploys of the act were rolling out (their gone holders'
    intent, on any host), oldest first."""
    return sorted({holder["release"] for facts in observed.values()
                   for holder in facts.held_locks(locks).values()
                   if holder.get("command") == "deploy-act" and holder.get("act") == act
                   and isinstance(holder.get("release"), str) and checks.lock_is_stale(holder)})


def decide(act: str, observed: dict[str, Observed], locks: list[str], digest: str
           ) -> Convergence:
    """Forward or back (see the module's docstring); ``digest``: the workstation's code's."""
    live = {host: facts.current_release(act) for host, facts in observed.items()}
    releases = sorted(set(live.values()) - {None})
    intents = abandoned(act, observed, locks)
    new = intents[-1] if intents else (releases[-1] if len(releases) > 1 else None)
    if new is None:
        return Convergence(releases[0] if releases else None, False,
                           f"{act} is on one release everywhere, with no abandoned rollout")
    old = [r for r in releases if r != new]
    back = old[-1] if old else None
    ran = [h for h, r in live.items() if r == new]
    failed = [h for h, facts in observed.items() if new in facts.bad_releases(act)]
    unchecked = [h for h in ran if new not in observed[h].good_releases(act)]
    if not ran:
        why = f"{new} never went live: staying on {back}"
    elif failed:
        why = f"{new} failed its checks on {', '.join(failed)}: back to {back}"
    elif unchecked:
        why = f"{new} went live on {', '.join(unchecked)} without passing its checks there: " \
              f"back to {back}"
    elif not new.endswith("-" + digest[:8]):
        why = f"{new} passed its checks where it went live, but the workstation's code is " \
              f"not its code: back to {back}"
    else:
        return Convergence(new, True, f"{new} passed its checks everywhere it went live "
                                      f"({', '.join(ran)}): forward, every host to it")
    return Convergence(back, False, why)


def plan_back(production: Production, host: str, layout: Layout, observed: Observed, act: str,
              target: str | None, holder: dict, stale: dict[str, dict]
              ) -> tuple[str, Step | None]:
    """Put one host on ``target`` (revived, health-checked, switched to; None: its previous
    good release), the other vassals retired and the abandoned locks (``stale``: name ->
    holder) freed: the release it ends on, and the step (None: it is there already)."""
    current = observed.current_release(act)
    target = target or (current and rollback_target(host, observed, act, None))
    others = [r for r in observed.vassal_releases(act) if r != target]
    if (current == target and not others and not stale) or target is None:
        return target, None
    script = Script()
    for name, gone in stale.items():
        lock.release(script, layout, [name], gone["token"])
    lock.acquire(script, layout, [lock.act_lock(act)], holder)
    if current != target:
        switch_back(script, production, host, layout, act,
                    rollback_target(host, observed, act, target))
    sess_cmd.retire(script, layout, act, others)
    history.append(script, layout, {"time": holder["time"], "event": "converge", "act": act,
                                    "release": target, "previous": current,
                                    "by": holder["by"]})
    lock.release(script, layout, [lock.act_lock(act)], holder["token"])
    return target, Step("converge", f"bring {act} from {current} to {target}", script.text())
