"""An act's hooks (its inventory's ``hooks`` table): which run where, and what they are told.

``before_deploy``, ``after_deploy`` and ``after_rollback`` run on the workstation
(:mod:`backstage.engine.hooks`); ``after_prepare``, ``before_switch`` and ``after_switch``
on each host, as the act in the new release (:mod:`backstage.commands.hooks`). Each gets
``BACKSTAGE_PRODUCTION``, ``BACKSTAGE_ACT``, ``BACKSTAGE_RELEASE``,
``BACKSTAGE_PREVIOUS_RELEASE`` (empty: none), ``BACKSTAGE_HOSTS`` (comma-separated) and,
after the deploy or rollback, ``BACKSTAGE_OUTCOME`` and ``BACKSTAGE_DURATION`` (seconds). A
hook that fails before the switch stops the rollout as a failed step does; after it, it is
reported and the switch is kept.
"""

from backstage.commands import hooks as hooks_cmd
from backstage.commands.release import Manage
from backstage.commands.shell import Script
from backstage.model import Layout, Production, RunAs

# Host hooks, and whether a failure stops the rollout (before the switch) or is only reported.
HOST_HOOKS = {"after_prepare": True, "before_switch": True, "after_switch": False}


def variables(production: Production, act: str, release: str | None, previous: str | None,
              hosts, outcome: str | None = None, duration: float | None = None
              ) -> dict[str, str]:
    """The ``BACKSTAGE_*`` variables of a hook."""
    found = {"BACKSTAGE_PRODUCTION": production.name, "BACKSTAGE_ACT": act,
             "BACKSTAGE_RELEASE": release or "", "BACKSTAGE_PREVIOUS_RELEASE": previous or "",
             "BACKSTAGE_HOSTS": ",".join(hosts)}
    if outcome is not None:
        found["BACKSTAGE_OUTCOME"] = outcome
    if duration is not None:
        found["BACKSTAGE_DURATION"] = f"{duration:.1f}"
    return found


def host_hook(script: Script, production: Production, layout: Layout, act: str, release: str,
              previous: str | None, hosts, manage: Manage, run_as: RunAs | None,
              venue_dir: str, name: str, record: dict) -> Script:
    """Add the act's hook ``name`` (if it has one) to a step's script."""
    command = getattr(production.acts[act].hooks, name)
    if command is None:
        return script
    return hooks_cmd.host_hook(script, layout, act, release, manage, run_as, venue_dir, name,
                               command, variables(production, act, release, previous, hosts),
                               {**record, "act": act, "release": release},
                               fatal=HOST_HOOKS[name])
