"""Roll a deploy out over the hosts of a production.

Phases, each across all selected hosts before the next begins:

1. **prepare** (in parallel, at most ``Options.parallel`` hosts at once): probe every host,
   say whether the fleet is split and resume the release of a killed deploy of the same code,
   and only then plan, take the lock (taking over one whose holder is gone), build the venue
   if needed, upload the release, ``check --deploy``, host-local migrations,
   ``collectstatic``. Traffic is untouched.
2. **migrate** shared databases once, on the first prepared host (inventory order).
3. **start** (in parallel): the new vassal starts beside the live one and is health-checked
   through its own socket. Traffic is still untouched.
4. **switch** in batches (``serial`` hosts each), each batch checked through nginx (health,
   smoke requests) and baked (its real traffic watched for ``bake`` seconds) before the next
   one starts. A failed bake stops the rollout whatever ``max_fail``: every switched host
   goes back.

Failed and unreachable hosts count against ``max_fail``. Past it the rollout stops: hosts
that already switched are reverted to their previous release (unless ``rollback`` is off), so
the fleet is never left split, and hosts that never switched drop their prepared vassal.
"""

import math
import time
from dataclasses import dataclass, field

from backstage.commands.sess import NOT_BACKWARDS_COMPATIBLE
from backstage.engine.executor import in_parallel
from backstage.engine.hosts import HostRun, Options
from backstage.engine.lease import LeaseKeeper
from backstage.engine.schema import record_migrations
from backstage.errors import BackstageError, HostUnreachable, StepFailed, UsageError
from backstage.facts.observed import Observed
from backstage.model import Production
from backstage.operations.bake import batch_bakes, read_bake
from backstage.operations.checks import stale_reason
from backstage.operations.deploy import (
    DeployInputs,
    HostPlan,
    describe_split,
    plan_deploy,
    resumed_release,
    split,
)
from backstage.render import Renderer
from backstage.util import utc_now


@dataclass
class HostOutcome:
    """What happened on one host; the summary table and ``--json`` show these fields."""

    host: str
    result: str = "pending"
    release_before: str | None = None
    release_after: str | None = None
    durations: dict[str, float] = field(default_factory=dict)
    started: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    bake: dict | None = None  # the bake's counts after the switch (operations/bake.py)

    def as_dict(self) -> dict:
        return {"result": self.result, "release_before": self.release_before,
                "release_after": self.release_after,
                "durations": {k: round(v, 3) for k, v in self.durations.items()},
                "started": self.started, "error": self.error, "bake": self.bake}


@dataclass
class RolloutReport:
    production: str
    act: str
    release: str
    outcomes: dict[str, HostOutcome]
    stopped: str | None = None  # why the rollout stopped early, if it did
    migrations: dict | None = None
    batches: list[list[str]] = field(default_factory=list)
    migration_plans: dict[str, list[dict]] = field(default_factory=dict)  # host -> per database
    schema: str | None = None  # old code left on a schema it predates (see engine.schema)

    @property
    def exit_code(self) -> int:
        results = [o.result for o in self.outcomes.values()]
        if self.stopped or "failed" in results or "reverted" in results:
            return 1
        if "unreachable" in results:
            return 3
        return 0

    def as_dict(self) -> dict:
        return {"production": self.production, "act": self.act, "release": self.release,
                "exit_code": self.exit_code, "stopped": self.stopped,
                "migrations": self.migrations, "batches": self.batches,
                "bakes": self.bakes(),
                "migration_plans": self.migration_plans, "schema": self.schema,
                "hosts": {h: o.as_dict() for h, o in self.outcomes.items()}}

    def bakes(self) -> list[dict | None]:
        """Each batch's bake counts, its hosts' added up (None: it did not bake)."""
        return batch_bakes(self.batches, {h: o.bake for h, o in self.outcomes.items()})


def count(value: str | int | None, total: int, option: str, default: int,
          positive: bool = False) -> float:
    """``N`` or ``N%`` of ``total`` hosts; ``positive``: more than none."""
    if value is None:
        return default
    text = str(value).strip()
    try:
        percent = text.endswith("%")
        number = float(text[:-1]) if percent else int(text)
        if not (0 < number if positive else 0 <= number) or (percent and number > 100):
            raise ValueError
    except ValueError:
        least = "at least 1, or a percentage above 0" if positive else "0 or more, or a percentage"
        raise UsageError(f"{option}: expected a number of hosts ({least}), got {text!r}") \
            from None
    return number * total / 100 if percent else number


def limits(serial, max_fail, total: int) -> tuple[int, int]:
    """Hosts per switch batch (``--serial``, rounded up) and hosts that may fail
    (``--max-fail``, rounded down) out of ``total``; UsageError for a bad value."""
    return (max(1, math.ceil(count(serial, total, "--serial", total, positive=True))),
            math.floor(count(max_fail, total, "--max-fail", 0)))


class Rollout:
    """One deploy of one act over the selected hosts; :meth:`run` returns a report."""

    def __init__(self, production: Production, names: list[str], inputs: DeployInputs,
                 env_for, options: Options, serial=None, max_fail=None, rollback=True):
        self.production, self.names, self.inputs = production, names, inputs
        self.env_for, self.options, self.rollback = env_for, options, rollback
        self.batch_size, self.max_fail = limits(serial, max_fail, len(names))
        self.renderer = Renderer(production)
        self.runs: dict[str, HostRun] = {}
        self.plans: dict[str, HostPlan] = {}
        self.observed: dict[str, Observed] = {}
        self.host_inputs: dict[str, DeployInputs] = {}  # with the host platform's venue
        self.switched: list[str] = []
        self.report = RolloutReport(production.name, inputs.act, inputs.bundle.release,
                                    {n: HostOutcome(n) for n in names})

    # --- running steps on hosts ---------------------------------------------------------

    def _parallel(self, names: list[str], action) -> None:
        in_parallel(names, self.options, lambda name: self._guarded(name, action))

    def _guarded(self, name: str, action) -> None:
        """Run a phase on a host; a host that fails there is out of the rollout."""
        try:
            action(name)
        except BackstageError as exc:
            outcome = self.report.outcomes[name]
            outcome.result = "unreachable" if isinstance(exc, HostUnreachable) else "failed"
            outcome.error = str(exc)
            # Also when the connection dropped mid-step: the lock is freed through a new one.
            self._free_lock(name)
            raise

    def _steps(self, name: str, phase: str, steps) -> None:
        self.report.outcomes[name].started.setdefault(phase, utc_now())
        started = time.monotonic()
        try:
            for step in steps:
                self._output(name, self.runs[name].execute(step))
        except StepFailed as exc:
            self._output(name, exc.stdout)
            raise
        finally:
            outcome = self.report.outcomes[name]
            outcome.durations[phase] = outcome.durations.get(phase, 0) + time.monotonic() - started

    def _output(self, name: str, stdout: str) -> None:
        """Keep what a step's output tells the report: a bake's counts."""
        self.report.outcomes[name].bake = read_bake(stdout) or self.report.outcomes[name].bake

    def _free_lock(self, name: str) -> None:
        run = self.runs.get(name)
        if run is not None and self.plans.get(name) and not self.plans[name].noop:
            run.free_lock(self.inputs.lock["token"], self.inputs.locks)

    def _live(self, phase_result: str = "pending") -> list[str]:
        return [n for n in self.names if self.report.outcomes[n].result == phase_result]

    def _failures(self) -> int:
        """Hosts out of the rollout: failed, unreachable, or reverted after failing their
        checks through nginx."""
        return sum(o.result in ("failed", "unreachable", "reverted")
                   for o in self.report.outcomes.values())

    # --- phases ---------------------------------------------------------------------------

    def _probe(self, name: str) -> None:
        run = self.runs[name] = HostRun(self.production, name, self.options)
        started = time.monotonic()
        self.observed[name] = run.probe()
        self.report.outcomes[name].durations["probe"] = time.monotonic() - started

    def _survey(self) -> None:
        """Before any plan: say if the fleet is split, and resume the release a killed deploy
        of the same code was rolling out (every host then ends on that one release id)."""
        act = self.inputs.act
        by_release = split(act, self.observed)
        if by_release:
            self.options.reporter.info(describe_split(act, by_release))
        resumed = resumed_release(self.inputs, self.observed)
        if resumed:
            self.inputs.resume(resumed)
            self.report.release = resumed
            self.options.reporter.info(f"resuming the abandoned rollout of {act} release "
                                       f"{resumed} (its deploy's process is gone)")

    def _prepare(self, name: str) -> None:
        run, observed = self.runs[name], self.observed[name]
        # The venue's wheels for the host's platform (after the survey: a resumed release).
        inputs = self.host_inputs[name] = self.inputs.per_host(run, observed)
        plan = self.plans[name] = plan_deploy(self.production, name, run.layout, observed,
                                              self.renderer, inputs, self.env_for(run.layout))
        outcome = self.report.outcomes[name]
        outcome.release_before = outcome.release_after = plan.previous
        for lock_name, holder in plan.taken_over.items():
            self.options.reporter.info(
                f"{name}  taking over {lock_name}: its holder is gone ({holder.get('by')}, "
                f"pid {holder.get('pid')}, {holder.get('command')} "
                f"{holder.get('release') or ''}".rstrip() + f"): {stale_reason(holder)}")
        if plan.noop:
            outcome.result = "unchanged"
            self.options.reporter.info(f"{name}  {self.inputs.act} is up to date: nothing to change")
            return
        if plan.changes.repair:
            how = "repairing it" if plan.repair else "deploying it again"
            self.options.reporter.info(f"{name}  {self.inputs.act}: "
                                       f"{'; '.join(plan.changes.repair)}: {how}")
        self._steps(name, "prepare", plan.prepare)

    def _migrate(self) -> bool:
        """Migrate shared databases once, on the first prepared host with a new release."""
        host = next((n for n in self._live() if self.plans[n].migrate), None)
        if host is None:
            return True
        step = self.plans[host].migrate
        self._parallel([host], lambda n: self._steps(n, "migrate", [step]))
        if self.report.outcomes[host].result == "failed":
            self.report.stopped = f"migrations failed on {host}"
            return False
        self.report.migrations = {"host": host, "step": step.summary}
        return True

    def _switch(self, name: str) -> None:
        plan = self.plans[name]
        self._steps(name, "switch", plan.switch)
        outcome = self.report.outcomes[name]
        outcome.result = "repaired" if plan.repair else "deployed"
        outcome.release_after = plan.release

    # --- stopping ---------------------------------------------------------------------------

    def _over_budget(self) -> bool:
        return self._failures() > self.max_fail

    def _stop(self, reason: str, switched: list[str]) -> None:
        """Past max-fail: revert switched hosts, drop prepared vassals elsewhere."""
        self.report.stopped = reason
        self.options.reporter.info(f"stopping the rollout: {reason}")
        to_revert = [n for n in switched if self.report.outcomes[n].result != "reverted"] \
            if self.rollback else []
        self._parallel(to_revert, self._revert)
        # Failed hosts too: a host cut short (Ctrl-C) may have a prepared vassal running, and
        # one whose connection dropped mid-step may be reachable again.
        waiting = [n for n, plan in self.plans.items() if not plan.noop and n not in switched
                   and self.report.outcomes[n].result in ("pending", "failed", "unreachable")]
        self._parallel(waiting, self._abort)

    def _revert(self, name: str) -> None:
        outcome = self.report.outcomes[name]
        self._steps(name, "revert", [self.plans[name].revert])
        outcome.result, outcome.release_after = "reverted", self.plans[name].previous

    def _revert_failed(self, batch: list[str]) -> None:
        """Hosts of a batch that failed after their switch (a check through nginx) go back at
        once, within ``--max-fail`` too: none keeps serving a release that failed its checks."""
        if self.rollback:
            self._parallel([n for n in batch if self.report.outcomes[n].result == "failed"],
                           self._revert)

    def _abort(self, name: str) -> None:
        outcome = self.report.outcomes[name]
        self._steps(name, "abort", [self.plans[name].abort])
        if outcome.result == "pending":
            outcome.result = "not switched"

    def _incompatible(self) -> str | None:
        """Why to stop before any switch, whatever ``--max-fail``: the live release failed its
        health check after the migrations, on some host (see ``HostDeploy.live_after_migrate``)."""
        hosts = [n for n, o in self.report.outcomes.items()
                 if o.error and NOT_BACKWARDS_COMPATIBLE in o.error]
        if not hosts:
            return None
        return (f"the live release fails its health check after the migrations on "
                f"{', '.join(hosts)}: {NOT_BACKWARDS_COMPATIBLE} (stopped before any switch; "
                "the old code must read the new schema: see the README, \"The old release "
                "against the new schema\")")

    # --- the whole rollout --------------------------------------------------------------

    def run(self) -> RolloutReport:
        """Run the phases; on Ctrl-C, stop as past max-fail would, then re-raise."""
        try:
            with self._lease():
                self._run()
        except KeyboardInterrupt:
            self.options.cancelled.clear()
            self._stop("interrupted", self.switched)
            raise
        finally:
            record_migrations(self.report, self.runs)
            for run in self.runs.values():
                self.options.stats[run.name] = run.counters()
                run.close()
            self.options.reporter.totals(self.options.stats)
        return self.report

    def _lease(self) -> LeaseKeeper:
        """Renew the deploy's locks on the hosts that took them, every third of their lease."""
        lock = self.inputs.lock
        return LeaseKeeper(lambda: [self.runs[n] for n, p in list(self.plans.items())
                                    if not p.noop and n in self.runs],
                           self.inputs.locks, lock["token"], lock.get("lease", 300) / 3)

    def _run(self) -> None:
        self._parallel(self.names, self._probe)
        self._survey()
        self._parallel(self._live(), self._prepare)
        if self._over_budget():
            return self._stop(f"{self._failures()} host(s) failed to prepare "
                              f"(--max-fail {self.max_fail})", [])
        if not self._migrate():
            return self._stop(self.report.stopped, [])
        self._parallel(self._live(), lambda n: self._steps(n, "start", self.plans[n].start))
        if self._incompatible():
            return self._stop(self._incompatible(), [])
        if self._over_budget():
            return self._stop(f"{self._failures()} host(s) failed to start the release "
                              f"(--max-fail {self.max_fail})", [])
        ready = self._live()
        for first in range(0, len(ready), self.batch_size):
            batch = ready[first:first + self.batch_size]
            self.report.batches.append(batch)
            self.switched += batch
            self._parallel(batch, self._switch)
            self._revert_failed(batch)
            soured = [n for n in batch if (self.report.outcomes[n].bake or {}).get("ok") is False]
            if soured:  # the release fails real traffic: no host keeps it, whatever --max-fail
                return self._stop(f"the bake failed on {', '.join(soured)}", self.switched)
            if self._over_budget():
                return self._stop(f"{self._failures()} host(s) failed "
                                  f"(--max-fail {self.max_fail})", self.switched)
