"""``deploy-act``: what the workstation prepares once, and the plan on each host, in phases.

After the probe, a warm deploy is three remote commands per host: upload and prepare the
release (the upload is whatever turns a tree the host has into the new one: nothing, a delta,
or the whole tree; see :mod:`backstage.artefacts.bundle`); start its vassal, health-check it
through its own socket and update the gigs; switch traffic, retire the old vassal and clean
up. A changed requirements file adds one command (the venue build), shared databases one
command on one host (their migrations). When the code, the env file, the vassal and the gigs
are all as desired and the live release serves (the probe checks), the plan is empty; when
they are as desired but it does not serve, the plan repairs it (:meth:`HostDeploy.repair`).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from backstage.artefacts import bundle
from backstage.artefacts.bundle import Bundle
from backstage.commands import gig as gig_cmd
from backstage.commands import history, lock, privileges
from backstage.commands import release as release_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands import venue as venue_cmd
from backstage.commands.release import Manage
from backstage.commands.shell import Script
from backstage.errors import UsageError, known_hint
from backstage.facts.live import LiveState
from backstage.facts.observed import Observed
from backstage.model import Layout, Production, RunAs, django
from backstage.model.django import deployment_environment
from backstage.model.secrets import reveal
from backstage.operations import checks, snapshots
from backstage.operations.bake import nginx_bake
from backstage.operations.changes import Changes, FileChange
from backstage.operations.gig import gig_files, private_files
from backstage.operations.health import health_spec, nginx_health, nginx_smoke, smoke_spec
from backstage.operations.hooks import host_hook
from backstage.operations.lock import new_lock
from backstage.operations.releases import (
    leftovers,
    release_lists,
    releases_to_delete,
    venues_to_delete,
)
from backstage.operations.steps import Step
from backstage.render import Renderer
from backstage.util import sha256

# --- what the workstation prepares once ------------------------------------------------------


@dataclass
class DeployInputs:
    """What the workstation prepared for a deploy of one act (the same for every host)."""

    act: str
    bundle: Bundle
    venue_digest: str
    venue_wheels: Callable[[set[str]], bytes]
    lock: dict
    locks: list[str] = field(default_factory=list)  # what the deploy locks (deploy_locks)
    wheels: dict[str, str] = field(default_factory=dict)  # the venue's wheels -> sha256
    # (host run, its probe) -> the inputs with the venue's wheels for the host's platform
    per_host: Callable[[object, Observed], "DeployInputs"] | None = None
    certificates: dict = field(default_factory=dict)  # acme gig -> (full chain, key)
    resumed: str | None = None  # an abandoned rollout's release of this code, taken up again
    hosts: tuple[str, ...] = ()  # the hosts of the rollout (BACKSTAGE_HOSTS of its hooks)
    allow_destructive: bool = False  # --allow-destructive: apply destructive migrations too

    @property
    def release(self) -> str:
        """The release id this deploy makes: the bundle's, or the abandoned rollout's it
        resumes (so every host ends on one release id; see :func:`resumed_release`)."""
        return self.resumed or self.bundle.release

    def resume(self, release: str) -> None:
        self.resumed = self.lock["release"] = release

    @property
    def by(self) -> str:
        return self.lock["by"]

    @property
    def time(self) -> str:
        return self.lock["time"]


def require_act(production: Production, act_name: str):
    """The act, or a UsageError naming the inventory and the nearest act names."""
    if act_name not in production.acts:
        raise UsageError(f"unknown act {act_name!r} in {production.path}"
                         + known_hint(act_name, production.acts))
    return production.acts[act_name]


def deploy_inputs(production: Production, act_name: str) -> DeployInputs:
    """What the workstation prepares once for a deploy, before any host is contacted: the
    release (its source tree) and the lock. The venue's wheels depend on each host's platform:
    ``per_host`` fills them in once a probe told it (see :mod:`backstage.engine.builders`)."""
    act = require_act(production, act_name)
    # Every act's secrets file stays out, so the acts of one repository share one tree.
    secrets = frozenset(a.secrets for a in production.acts.values() if a.secrets)
    packed = bundle.pack(act.source, exclude=secrets)
    return DeployInputs(act_name, packed, "", lambda skip: b"",
                        new_lock("deploy-act", act_name, release=packed.release,
                                 lease=production.lock_timeout_of(act_name)),
                        deploy_locks(production, act_name))


def resumed_release(inputs: DeployInputs, observed: dict[str, Observed]) -> str | None:
    """The release of the same code that an abandoned deploy of the act was rolling out (the
    intent in a lock whose holder is gone, on any host), unless it failed anywhere: a deploy
    after a killed one then brings every host to that very release id."""
    found = {holder.get("release") for facts in observed.values()
             for holder in facts.held_locks(inputs.locks).values()
             if holder.get("command") == "deploy-act" and holder.get("act") == inputs.act
             and checks.lock_is_stale(holder)}
    same_code = sorted(r for r in found if isinstance(r, str)
                       and r.endswith("-" + inputs.bundle.digest[:8]))
    bad = set().union(*(facts.bad_releases(inputs.act) for facts in observed.values()))
    usable = [r for r in same_code if r not in bad]
    return usable[-1] if usable else None


def split(act: str, observed: dict[str, Observed]) -> dict[str, list[str]] | None:
    """Release -> hosts, when the hosts' live releases of the act differ (None: not split)."""
    by_release: dict[str, list[str]] = {}
    for host, facts in observed.items():
        by_release.setdefault(facts.current_release(act) or "nothing", []).append(host)
    return by_release if len(by_release) > 1 else None


def describe_split(act: str, by_release: dict[str, list[str]]) -> str:
    """One line: ``storefront is split across releases: R2 on h1; R1 on h2, h3``."""
    parts = [f"{release} on {', '.join(hosts)}" for release, hosts in sorted(by_release.items())]
    return f"{act} is split across releases: {'; '.join(parts)}"


def act_environment(production: Production, act_name: str, layout: Layout) -> str:
    """The env file of an act on a host: its env, its secrets, and Backstage's variables.
    The one place secret values are taken out of their :class:`Secret` wrapping."""
    secrets = production.secrets_of(act_name)
    values = {**production.acts[act_name].env, **secrets,
              **deployment_environment(production, act_name, layout, secrets)}
    return "".join(f"{key}={env_value(value)}\n" for key, value in values.items())


def env_value(value) -> str:
    """A value of the env file: JSON for a table (the databases), else the text itself."""
    return json.dumps(value, sort_keys=True, default=reveal) if isinstance(value, dict) \
        else reveal(value)


def migrated_here(production: Production, act_name: str, shared: bool) -> dict[str, str]:
    """The act's logical databases its deploys migrate, each with the act's Django alias for
    it: shared ones (once per deploy) or host-local ones (on each host), all but those
    another act migrates (``migrate_with``)."""
    databases, act = production.databases, production.acts[act_name]
    return {d: act.database_alias(d) for d in act.logical_databases
            if databases[d].shared == shared and databases[d].migrate_with in (None, act_name)}


def deploy_locks(production: Production, act_name: str) -> list[str]:
    """What a deploy of the act locks on each host, in the order they are taken: the act, and
    each database it migrates that other acts' deploys migrate too (no ``migrate_with``)."""
    def migrators(database: str) -> list[str]:
        shared = production.databases[database].shared
        return [a for a in production.acts if database in migrated_here(production, a, shared)]

    databases = [d for d in production.acts[act_name].logical_databases
                 if len(migrators(d)) > 1 and act_name in migrators(d)]
    return sorted([lock.act_lock(act_name), *(lock.database_lock(d) for d in databases)])


# --- the plan on one host -------------------------------------------------------------------


@dataclass
class HostPlan:
    """A deploy on one host, in the phases a rollout runs across hosts.

    ``prepare`` (venue, upload, checks, host-local migrations, collectstatic) and ``start``
    (new vassal, health check through its own socket) leave traffic alone; ``switch`` moves it.
    ``migrate`` (shared databases) runs between the two, on one host. If the rollout stops, ``abort`` undoes a host that never switched and ``revert`` one that
    did. An empty plan (nothing changed) has no steps at all.
    """

    release: str
    previous: str | None
    run_as: RunAs | None = None
    prepare: list[Step] = field(default_factory=list)
    start: list[Step] = field(default_factory=list)
    switch: list[Step] = field(default_factory=list)
    abort: Step | None = None
    revert: Step | None = None
    migrate: Step | None = None  # shared databases: run on one host only (see migrations)
    changes: Changes = field(default_factory=Changes)
    repair: bool = False  # the live release again, not a new one (see HostDeploy.repair)
    taken_over: dict[str, dict] = field(default_factory=dict)  # stale locks: name -> holder

    @property
    def noop(self) -> bool:
        return not (self.prepare or self.start or self.switch)


def plan_deploy(production: Production, host: str, layout: Layout, observed: Observed,
                renderer: Renderer, inputs: DeployInputs, env_text: str,
                dry_run: bool = False) -> HostPlan:
    """The deploy's steps on one host; ``dry_run`` plans past a held lock (and takes none)."""
    return HostDeploy(production, host, layout, observed, renderer, inputs, env_text,
                      dry_run).plan()


class HostDeploy:
    """The deploy of one act on one host: checks the host, then builds each phase's steps."""

    live_served = False  # the live release served at the probe (see live_after_migrate)

    def __init__(self, production: Production, host: str, layout: Layout, observed: Observed,
                 renderer: Renderer, inputs: DeployInputs, env_text: str, dry_run: bool = False):
        self.production, self.host, self.layout, self.observed = production, host, layout, observed
        self.renderer, self.inputs, self.env_text = renderer, inputs, env_text
        self.act_name = inputs.act
        self.act = production.acts[self.act_name]
        self.python = production.hosts[host].python
        checks.privileged(host, observed)
        checks.stage_ready(host, observed)
        # Locks whose holder is gone (a killed deploy): taken over, and said so.
        self.taken_over = {} if dry_run else checks.locks_to_take_over(host, observed,
                                                                       inputs.locks)
        self.venue_dir = layout.venue_dir(self.act.venue, inputs.venue_digest)
        self.run_as = (checks.act_user(host, observed, production.act_user(self.act_name),
                                       production.hosts[host].nginx_group)
                       if layout.kind == "system" else None)
        self.current = observed.current_release(self.act_name)
        self.release = inputs.release

    def manage(self) -> Manage:
        """How the new release's ``manage.py`` runs (as its vassal runs the app)."""
        return Manage.of(self.production, self.act_name, self.layout, self.release,
                         self.venue_dir)

    def vassal_ini(self, release: str) -> str:
        return self.renderer.vassal(self.layout, self.act_name, release, self.venue_dir,
                                    self.run_as)

    def history(self, script: Script, event: str, **record) -> Script:
        return history.append(script, self.layout, {"time": self.inputs.time, "event": event,
                                                    "act": self.act_name, **record,
                                                    "by": self.inputs.by})

    def lock(self) -> Script:
        """Take the deploy's locks, first freeing those whose holder is gone (each only if
        its holder's token is still there: a racing deploy may have taken it over first)."""
        script = Script()
        for name, holder in self.taken_over.items():
            lock.release(script, self.layout, [name], holder["token"])
        if self.taken_over:
            holders = [{k: v for k, v in h.items() if k != "token"}
                       for h in self.taken_over.values()]
            self.history(script, "takeover", locks=sorted(self.taken_over), holder=holders[0])
        return lock.acquire(script, self.layout, self.inputs.locks, self.inputs.lock)

    def unlock(self, script: Script) -> Script:
        return lock.release(script, self.layout, self.inputs.locks, self.inputs.lock["token"])

    def health_check(self, script: Script, release: str) -> Script:
        return sess_cmd.health_check(script, self.layout, self.python, self.act_name, release,
                                     health_spec(self.production, self.act_name))

    def hook(self, script: Script, name: str) -> Script:
        """The act's host hook ``name``, if it has one (see :mod:`backstage.operations.hooks`)."""
        return host_hook(script, self.production, self.layout, self.act_name, self.release,
                         self.current, self.inputs.hosts, self.manage(), self.run_as,
                         self.venue_dir, name, {"time": self.inputs.time, "by": self.inputs.by})

    # --- deciding -------------------------------------------------------------------------

    def plan(self) -> HostPlan:
        """Nothing (all as desired and serving), a repair, or a new release's phases."""
        act, current, observed = self.act_name, self.current, self.observed
        gigs = gig_files(self.production, act, self.layout, self.renderer, observed,
                         self.inputs.certificates)
        live = observed.live(act)
        if (current and current.endswith(self.inputs.bundle.digest[:8])
                and observed.env_digest(act, current) == sha256(self.env_text) and not gigs):
            vassal = observed.vassal_digest(act, current)  # None unless enabled
            if vassal == sha256(self.vassal_ini(current)) and live.repair is None:
                checks.gigs_served(self.host, observed, act, self.production.gigs_of(act))
                return self.finish() if self.taken_over else HostPlan(current, current,
                                                                      self.run_as)
            # A repair builds nothing: not when the venue changed (another server, say).
            if live.repair in ("relink", "start") and current not in observed.bad_releases(act) \
                    and vassal in (None, sha256(self.vassal_ini(current))) \
                    and observed.venue_built(self.act.venue, self.inputs.venue_digest):
                return self.repair(live)
        if self.release == current:  # the resumed release is live here, with changes to make
            self.release = self.inputs.bundle.release
        plan = HostPlan(self.release, current, self.run_as, taken_over=self.taken_over)
        self.describe(plan.changes, live, gigs)
        self.live_served = not live.reasons
        plan.prepare = self.prepare(plan.changes)
        plan.start = [self.start(gigs)]
        plan.switch = [self.switch(plan.changes)]
        plan.abort, plan.revert = self.abort(), self.revert()
        plan.migrate = self.migrations()
        return plan

    def describe(self, changes: Changes, live: LiveState, gigs: dict[str, str]) -> None:
        """What the new release changes, for ``plan`` (the steps fill in the rest)."""
        act, observed, layout = self.act_name, self.observed, self.layout
        changes.repair = live.reasons
        changes.env = observed.env_digest(act, self.current) != sha256(self.env_text)
        changes.settings = django.overlay_summary(self.production, act)
        live_vassal = layout.vassal(act, self.current) \
            if observed.vassal_digest(act, self.current) else None
        changes.files = [
            FileChange(layout.vassal(act, self.release), self.vassal_ini(self.release),
                       live_vassal),
            *(FileChange(p, t, p if observed.has(p) else None) for p, t in gigs.items())]

    # --- the phases -----------------------------------------------------------------------

    def prepare(self, changes: Changes) -> list[Step]:
        """Take the locks; build the venue if needed; upload, check, migrate host-local
        databases and collect static files. Traffic is untouched."""
        steps = []
        script = self.lock()
        if not self.observed.venue_built(self.act.venue, self.inputs.venue_digest):
            changes.venue = self.venue_dir
            steps.append(self.venue(script))
            script = Script()
        steps.append(self.upload(script))
        return steps

    def venue(self, script: Script) -> Step:
        observed, inputs, venue = self.observed, self.inputs, self.act.venue
        checks.venue_matches_emperor(self.host, venue, observed.python, observed.stage_python)
        venue_python = self.production.venues[venue].python or self.python
        venue_cmd.build_venue(script, self.layout, venue, inputs.venue_digest, venue_python)
        # Wheels the host has with the same content stay behind (the probe hashed them).
        present = {name for name, digest in inputs.wheels.items()
                   if observed.digest(f"{self.layout.wheelhouse}/{name}") == digest}
        return Step("venue", f"build venue {venue}-{inputs.venue_digest}", script.text(),
                    lambda: inputs.venue_wheels(present))

    def upload(self, script: Script) -> Step:
        layout, act, release, run_as = self.layout, self.act_name, self.release, self.run_as
        env_bytes = self.env_text.encode()
        upload = self.inputs.bundle.upload_for(self.observed.trees)
        release_cmd.unpack_release(script, layout, self.python, act, release, len(env_bytes),
                                   upload)
        release_cmd.write_settings_modules(script, layout, act, release,
                                           self.renderer.settings_modules(act))
        if run_as:
            databases = self.production.databases
            sqlite_files = [databases[d].sqlite_path(d, layout.data)
                            for d in self.act.logical_databases if not databases[d].shared]
            privileges.own_act_state(script, layout, self.python, act, release, run_as,
                                     self.production.group, sqlite_files)
            privileges.open_static(script, layout, act, release, run_as)
        self.live_before_migrate(script)
        release_cmd.prepare_release(
            script, layout, act, release, self.manage(), migrated_here(self.production, act,
                                                                       shared=False),
            {"time": self.inputs.time, "event": "migrate", "act": act, "release": release,
             "by": self.inputs.by}, run_as, self.act.static,
            snapshots.local_files(migrated_here(self.production, act, shared=False), release,
                                  self.inputs.time),
            self.act.keep_snapshots, own_sqlite=self.act.migrates_own_sqlite,
            destructive=self.destructive(),
            checked=migrated_here(self.production, act, shared=True))
        if run_as:
            privileges.seal_static(script, layout, act, release, run_as)
        self.hook(script, "after_prepare")
        return Step("release", f"upload release {release} ({upload.describe()}), "
                    "check, collectstatic, migrate", script.text(),
                    lambda: env_bytes + upload.data)

    def start(self, gigs: dict[str, str]) -> Step:
        """Start the new vassal beside the live one and health-check it through its own
        socket; install changed gigs. A gig that fails ``nginx -t`` stops the rollout with
        traffic untouched (gig files name the stable socket, not a release)."""
        script = sess_cmd.start_vassal(self.live_after_migrate(Script()), self.layout,
                                       self.act_name, self.release, self.vassal_ini(self.release))
        self.health_check(script, self.release)
        smoke = smoke_spec(self.production, self.act_name, self.smoke_record())
        if smoke:
            sess_cmd.smoke_check(script, self.layout, self.python, self.act_name, self.release,
                                 smoke)
        private = private_files(self.production, self.layout)
        gig_cmd.install_gigs(script, self.layout, gigs, [], self.observed.services, private)
        self.hook(script, "before_switch")
        payload = gig_cmd.private_payload(gigs, private)
        checked = "health-check and smoke-test" if smoke else "health-check"
        return Step("start", f"start {self.act_name}@{self.release}, {checked} its socket",
                    script.text(), payload and (lambda: payload))

    def smoke_record(self, release: str | None = None) -> dict:
        """What each smoke check's history entry says besides its answers."""
        return {"release": release or self.release, "by": self.inputs.by}

    def switch(self, changes: Changes) -> Step:
        """Move traffic, check through nginx (health, smoke, then the bake: real traffic for
        a few seconds), record the release good, retire the old vassal (only now: a failed
        check reverts to it at once), clean up, unlock."""
        act, release, layout = self.act_name, self.release, self.layout
        script = sess_cmd.relink(Script().step("switch"), layout, act, release)
        # Recorded at once: a deploy cut short after this point (killed) still shows in history.
        self.history(script, "deploy", release=release, previous=self.current)
        nginx_health(script, self.production, act, layout, self.python)
        nginx_smoke(script, self.production, act, release, layout, self.python,
                    self.smoke_record())
        nginx_bake(script, self.production, act, release, layout, self.python,
                   self.smoke_record())
        sess_cmd.mark_good(script, layout, act, release)
        changes.retired = [r for r in self.observed.vassal_releases(act) if r != release]
        sess_cmd.retire(script, layout, act, changes.retired)
        self.cleanup(script, changes)
        self.unlock(script)
        self.hook(script, "after_switch")
        return Step("switch", f"switch {act} to {release}", script.text())

    def abort(self) -> Step:
        """Undo a host that never switched: drop the prepared vassal, unlock."""
        script = sess_cmd.discard(Script(), self.layout, self.act_name, self.release)
        return Step("abort", f"remove {self.act_name}@{self.release}, keep {self.current}",
                    self.unlock(script).text())

    def revert(self) -> Step:
        """Put a host that already switched back on its previous release (or on nothing)."""
        act, previous, layout = self.act_name, self.current, self.layout
        script = Script()
        if previous:
            sess_cmd.revive(script, layout, act, previous)
            self.health_check(script, previous)
            sess_cmd.switch(script, layout, act, previous)
        else:
            sess_cmd.unlink_live(script, layout, act)
        sess_cmd.discard(script, layout, act, self.release, grace=sess_cmd.RETIRE_GRACE_SECONDS)
        self.history(script, "rollback", release=previous, previous=self.release,
                     reason="rollout stopped")
        self.unlock(script)
        return Step("revert", f"switch {act} back to {previous or 'nothing'}", script.text())

    def repair(self, live: LiveState) -> HostPlan:
        """A deploy of the live code on a host where the live release does not serve.

        Its directory and env file are there, so nothing is uploaded: its vassal is started
        again if its file is not enabled (written afresh, then health-checked through its own
        socket), and the stable socket and ``current`` are pointed at it again. Nothing is
        undone if the rollout stops: the host did not serve before.
        """
        act, release, layout = self.act_name, live.release, self.layout
        plan = HostPlan(release, release, self.run_as, repair=True, taken_over=self.taken_over)
        plan.changes.repair = live.reasons
        script = self.lock()
        if live.repair == "start":
            ini = self.vassal_ini(release)
            plan.changes.files = [FileChange(layout.vassal(act, release), ini)]
            sess_cmd.enable_vassal(script, layout, act, release, ini)
            self.health_check(script, release)
            plan.start.append(Step("start", f"start {act}@{release} again, health-check its "
                                   "socket", script.text()))
            script = Script()
        script.step("switch")
        sess_cmd.relink(script, layout, act, release)
        self.history(script, "repair", release=release, reasons=live.reasons)
        plan.changes.retired = [r for r in self.observed.vassal_releases(act) if r != release]
        sess_cmd.retire(script, layout, act, plan.changes.retired)
        nginx_health(script, self.production, act, layout, self.python)
        self.unlock(script)
        plan.switch.append(Step("switch", f"point {act} at {release} again", script.text()))
        unlock = self.unlock(Script()).text()
        plan.abort = Step("abort", f"leave {act}@{release} as it is", unlock)
        plan.revert = Step("revert", f"leave {act}@{release} as it is", unlock)
        return plan

    def finish(self) -> HostPlan:
        """The code is live here, but a deploy whose lock is taken over was cut short on this
        host, maybe mid-switch: check the release through nginx (health, smoke), then do what
        that switch had left (record the release good, retire the other vassals), so the host
        ends on a checked release. Nothing to undo if the checks fail (the rollout stops)."""
        act, release, layout = self.act_name, self.current, self.layout
        plan = HostPlan(release, release, self.run_as, repair=True, taken_over=self.taken_over)
        plan.changes.repair = ["a deploy cut short was here: checking it and finishing its switch"]
        script = self.lock().step("switch")
        nginx_health(script, self.production, act, layout, self.python)
        nginx_smoke(script, self.production, act, release, layout, self.python,
                    self.smoke_record(release))
        nginx_bake(script, self.production, act, release, layout, self.python,
                   self.smoke_record(release))
        if release not in self.observed.good_releases(act):
            sess_cmd.mark_good(script, layout, act, release)
        plan.changes.retired = [r for r in self.observed.vassal_releases(act) if r != release]
        sess_cmd.retire(script, layout, act, plan.changes.retired)
        self.unlock(script)
        plan.switch.append(Step("switch", f"check {act}@{release} through nginx, finish its "
                                "switch", script.text()))
        unlock = self.unlock(Script()).text()
        plan.abort = plan.revert = Step("abort", f"leave {act}@{release} as it is", unlock)
        return plan

    def cleanup(self, script: Script, changes: Changes) -> Script:
        """After a switch, bound what the host keeps (docs/internals.md, "What Backstage keeps on a
        host"): old releases, trees and venues nothing uses, leftovers of killed commands and
        gone releases, release lists naming releases no longer there, old history, and the
        act's log past its ``log_max_size``."""
        act, release, layout, observed = self.act_name, self.release, self.layout, self.observed
        changes.deleted = releases_to_delete(observed, act, self.act.keep_releases, release,
                                             self.current)
        sess_cmd.delete_releases(script, layout, act, changes.deleted)
        sess_cmd.delete_trees(script, layout, self.unused_trees(changes.deleted))
        kept = (set(observed.releases(act)) - set(changes.deleted)) | {release}
        left = leftovers(observed, act, kept)
        gone = {f"{act}@{r}.ini.retired" for r in changes.deleted} \
            | {p.rsplit("/", 1)[1] for p in left}
        venue = f"{self.act.venue}-{self.inputs.venue_digest}"
        changes.removed = [*left, *(f"{layout.root}/venues/{name}"
                                    for name in venues_to_delete(observed, {venue}, gone))]
        script.step("cleanup").remove(*changes.removed)
        good, bad = release_lists(observed, act, kept - {release})
        if observed.good_releases(act) != good:  # else the switch's line made it right
            script.write_file(layout.good_list(act), "".join(f"{r}\n" for r in [*good, release]))
        if bad != sorted(observed.bad_releases(act)):
            script.write_file(layout.bad_list(act), "".join(f"{r}\n" for r in bad))
        sess_cmd.rotate_log(script, layout, act, self.act.log_max_bytes)
        return history.trim(script, layout)

    def unused_trees(self, deleted: list[str]) -> list[str]:
        """Trees no release of the production's acts on the host comes from any more.

        A release id ends with its tree's digest (8 digits); a tree removed here costs only a
        delta base, never a release (releases are hard-link copies, not links to trees).
        """
        kept = {self.release}
        for act in self.production.acts_on(self.host):
            kept |= {r for r in self.observed.releases(act)
                     if act != self.act_name or r not in deleted}
        used = {r.rsplit("-", 1)[-1] for r in kept}
        return sorted(t for t in self.observed.trees if t[:8] not in used)

    def migrations(self) -> Step | None:
        """Migrate the act's shared databases once, on this host, with the new release's
        code (None: it has none)."""
        shared = migrated_here(self.production, self.act_name, shared=True)
        if not shared:
            return None
        script = snapshots.before_migrate(Script(), self.production, self.layout, self.act_name,
                                          self.release, self.manage(), shared, self.run_as,
                                          self.inputs.time)
        release_cmd.migrate_shared(script, self.layout, self.act_name, self.release,
                                   self.manage(), shared, self.run_as, self.destructive())
        self.history(script, "migrate", release=self.release, databases=list(shared))
        return Step("migrate", f"migrate {', '.join(shared)} once, on {self.host}",
                    script.text())

    def live_before_migrate(self, script: Script) -> Script:
        """While preparing, before any migration: note whether the live release passes its
        health check (if it served at the probe), for :meth:`live_after_migrate`."""
        if self.current and self.live_served:
            sess_cmd.live_before_migrate(script, self.layout, self.python, self.act_name,
                                         self.current, health_spec(self.production,
                                                                   self.act_name))
        return script

    def live_after_migrate(self, script: Script) -> Script:
        """Before the new release starts (the migrations have run): health-check the live
        release once more, if it passed before them. Failing now, it fails on the new schema:
        the migration is not backwards compatible, and the rollout stops before any switch."""
        if self.current and self.live_served:
            sess_cmd.live_check(script, self.layout, self.python, self.act_name, self.current,
                                health_spec(self.production, self.act_name))
        return script

    def destructive(self) -> str:
        """Whether this deploy's migrations may be destructive or irreversible: the act's
        ``allow_destructive`` or ``--allow-destructive`` say ``allow``; else ``refuse``."""
        allowed = self.act.allow_destructive or self.inputs.allow_destructive
        return "allow" if allowed else "refuse"
