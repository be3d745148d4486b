"""Plan ``deploy-act`` on one host, in phases: prepare, start, switch (and undo steps).

After the probe, a warm deploy is three remote commands per host: upload and prepare the
release (the upload is whatever turns a tree the host has into the new one: nothing, a delta,
or the whole tree; see :mod:`backstage.artefacts.bundle`); start its vassal, health-check it
through its own socket and update the gigs; switch traffic, retire the old vassal and clean
up. A changed requirements file adds one command (the venue build), shared databases one
command on one host (their migrations). When the code, the env file, the vassal and the gigs
are all as desired and the live release serves (the probe checks), the plan is empty; when
they are as desired but it does not serve, the plan repairs it (see :func:`plan_repair`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from backstage.artefacts.bundle import Bundle
from backstage.commands import gig as gig_cmd
from backstage.commands import history, lock, privileges
from backstage.commands import release as release_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands import venue as venue_cmd
from backstage.commands.release import Manage
from backstage.commands.shell import Script
from backstage.model import Layout, Production, RunAs, django
from backstage.plan import checks
from backstage.plan.changes import Changes, FileChange
from backstage.plan.live import LiveState
from backstage.plan.observed import Observed
from backstage.plan.releases import (
    leftovers,
    release_lists,
    releases_to_delete,
    venues_to_delete,
)
from backstage.plan.steps import Step
from backstage.render import Renderer
from backstage.util import sha256


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

    @property
    def by(self) -> str:
        return self.lock["by"]

    @property
    def time(self) -> str:
        return self.lock["time"]


def health_spec(production: Production, act_name: str) -> dict:
    act = production.acts[act_name]
    gigs = production.gigs_of(act_name)
    host = act.health.host or (production.gigs[gigs[0]].domains[0] if gigs else "localhost")
    return {"host": host, "path": act.health.path or "/", "status": act.health.expected,
            "timeout": act.health.timeout, "retries": act.health.retries,
            "https": any(production.gigs[g].tls for g in gigs)}


def gig_files(production: Production, act: str, layout: Layout, renderer: Renderer,
              observed: Observed) -> dict[str, str]:
    """Rendered gig files of an act that differ from what the host has."""
    files = {layout.gig_conf(g): renderer.gig(layout, g) for g in production.gigs_of(act)}
    return {path: text for path, text in files.items() if observed.digest(path) != sha256(text)}


@dataclass
class HostPlan:
    """A deploy on one host, in the phases a rollout runs across hosts.

    ``prepare`` (venue, upload, checks, host-local migrations, collectstatic) and ``start``
    (new vassal, health check through its own socket) leave traffic alone; ``switch`` moves it.
    If the rollout stops, ``abort`` undoes a host that never switched and ``revert`` one that
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
    changes: Changes = field(default_factory=Changes)
    repair: bool = False  # the live release again, not a new one (see plan_repair)

    @property
    def noop(self) -> bool:
        return not (self.prepare or self.start or self.switch)


def plan_deploy(production: Production, host: str, layout: Layout, observed: Observed,
                renderer: Renderer, inputs: DeployInputs, env_text: str,
                dry_run: bool = False) -> HostPlan:
    """The deploy's steps on one host; ``dry_run`` plans past a held lock (and takes none)."""
    act_name = inputs.act
    act = production.acts[act_name]
    python = production.hosts[host].python
    venue_python = production.venues[act.venue].python or python
    checks.privileged(host, observed)
    checks.stage_ready(host, observed)
    if not dry_run:
        checks.not_locked(host, observed, inputs.locks)
    venue_dir = layout.venue_dir(act.venue, inputs.venue_digest)
    run_as = (checks.act_user(host, observed, production.act_user(act_name),
                              production.hosts[host].nginx_group)
              if layout.kind == "system" else None)

    def vassal_ini(release):
        return renderer.vassal(layout, act_name, release, venue_dir, run_as)

    current = observed.current_release(act_name)
    gigs = gig_files(production, act_name, layout, renderer, observed)
    live = observed.live(act_name)
    if (current and current.endswith(inputs.bundle.digest[:8])
            and observed.env_digest(act_name, current) == sha256(env_text) and not gigs):
        vassal = observed.vassal_digest(act_name, current)  # None unless enabled
        if vassal == sha256(vassal_ini(current)) and live.repair is None:
            checks.gigs_served(host, observed, act_name, production.gigs_of(act_name))
            return HostPlan(current, current, run_as)
        if live.repair in ("relink", "start") and vassal in (None, sha256(vassal_ini(current))) \
                and current not in observed.bad_releases(act_name):
            return plan_repair(production, host, layout, observed, inputs, live,
                               vassal_ini(current), run_as)

    release = inputs.bundle.release
    plan = HostPlan(release, current, run_as)
    changes = plan.changes
    changes.repair = live.reasons
    changes.env = observed.env_digest(act_name, current) != sha256(env_text)
    changes.settings = django.overlay_summary(production, act_name)
    live_vassal = layout.vassal(act_name, current) if observed.vassal_digest(act_name, current) \
        else None
    changes.files = [FileChange(layout.vassal(act_name, release), vassal_ini(release), live_vassal),
                     *(FileChange(p, t, p if observed.has(p) else None) for p, t in gigs.items())]
    script = lock.acquire(Script(), layout, inputs.locks, inputs.lock)
    if not observed.venue_built(act.venue, inputs.venue_digest):
        changes.venue = venue_dir
        checks.venue_matches_emperor(host, act.venue, observed.python, observed.stage_python)
        venue_cmd.build_venue(script, layout, act.venue, inputs.venue_digest, venue_python)
        # Wheels the host has with the same content stay behind (the probe hashed them).
        present = {name for name, digest in inputs.wheels.items()
                   if observed.digest(f"{layout.wheelhouse}/{name}") == digest}
        plan.prepare.append(Step("venue", f"build venue {act.venue}-{inputs.venue_digest}",
                                 script.text(), lambda: inputs.venue_wheels(present)))
        script = Script()

    env_bytes = env_text.encode()
    upload = inputs.bundle.upload_for(observed.trees)
    release_cmd.unpack_release(script, layout, python, act_name, release, len(env_bytes), upload)
    release_cmd.write_settings_modules(script, layout, act_name, release,
                                       renderer.settings_modules(act_name))
    if run_as:
        sqlite_files = [production.databases[d].sqlite_path(d, layout.data)
                        for d in act.logical_databases if not production.databases[d].shared]
        privileges.own_act_state(script, layout, python, act_name, release, run_as,
                                 production.group, sqlite_files)
        privileges.open_static(script, layout, act_name, release, run_as)
    release_cmd.prepare_release(
        script, layout, act_name, release, Manage.of(production, act_name, layout, release,
                                                     venue_dir),
        migrated_here(production, act_name, shared=False),
        {"time": inputs.time, "event": "migrate", "act": act_name, "release": release,
         "by": inputs.by}, run_as, act.static)
    if run_as:
        privileges.seal_static(script, layout, act_name, release, run_as)
    plan.prepare.append(Step("release", f"upload release {release} ({upload.describe()}), "
                             "check, collectstatic, migrate", script.text(),
                             lambda: env_bytes + upload.data))

    script = sess_cmd.start_vassal(Script(), layout, act_name, release, vassal_ini(release))
    sess_cmd.health_check(script, layout, python, act_name, release,
                          health_spec(production, act_name))
    # Before any switch: a gig that fails 'nginx -t' stops the rollout with traffic untouched.
    # Gig files name the stable socket and current, not a release, so the live one still serves.
    gig_cmd.install_gigs(script, layout, gigs, [], observed.services)
    plan.start.append(Step("start", f"start {act_name}@{release}, health-check its socket",
                           script.text()))

    script = sess_cmd.switch(Script(), layout, act_name, release)
    # Recorded at once: a deploy cut short after this point (killed) still shows in history.
    history.append(script, layout, {"time": inputs.time, "event": "deploy", "act": act_name,
                                    "release": release, "previous": current, "by": inputs.by})
    changes.retired = [r for r in observed.vassal_releases(act_name) if r != release]
    sess_cmd.retire(script, layout, act_name, changes.retired)
    cleanup(script, production, host, observed, inputs, changes)
    nginx_health(script, production, act_name, layout, python)
    lock.release(script, layout, inputs.locks, inputs.lock["token"])
    plan.switch.append(Step("switch", f"switch {act_name} to {release}", script.text()))

    script = sess_cmd.discard(Script(), layout, act_name, release)
    plan.abort = Step("abort", f"remove {act_name}@{release}, keep {current}",
                      lock.release(script, layout, inputs.locks, inputs.lock["token"]).text())
    plan.revert = revert_step(production, host, layout, act_name, release, current, inputs)
    return plan


def plan_repair(production: Production, host: str, layout: Layout, observed: Observed,
                inputs: DeployInputs, live: LiveState, vassal_ini: str,
                run_as: RunAs | None) -> HostPlan:
    """A deploy of the live code on a host where the live release does not serve.

    Its directory and env file are there, so nothing is uploaded: its vassal is started
    again if its file is not enabled (written afresh, then health-checked through its own
    socket), and the stable socket and ``current`` are pointed at it again. Nothing is undone
    if the rollout stops: the host did not serve before.
    """
    act, release = inputs.act, live.release
    plan = HostPlan(release, release, run_as, repair=True)
    plan.changes.repair = live.reasons
    script = lock.acquire(Script(), layout, inputs.locks, inputs.lock)
    if live.repair == "start":
        plan.changes.files = [FileChange(layout.vassal(act, release), vassal_ini)]
        sess_cmd.enable_vassal(script, layout, act, release, vassal_ini)
        sess_cmd.health_check(script, layout, production.hosts[host].python, act, release,
                              health_spec(production, act))
        plan.start.append(Step("start", f"start {act}@{release} again, health-check its socket",
                               script.text()))
        script = Script()
    script.step("switch")
    sess_cmd.relink(script, layout, act, release)
    history.append(script, layout, {"time": inputs.time, "event": "repair", "act": act,
                                    "release": release, "reasons": live.reasons,
                                    "by": inputs.by})
    plan.changes.retired = [r for r in observed.vassal_releases(act) if r != release]
    sess_cmd.retire(script, layout, act, plan.changes.retired)
    nginx_health(script, production, act, layout, production.hosts[host].python)
    lock.release(script, layout, inputs.locks, inputs.lock["token"])
    plan.switch.append(Step("switch", f"point {act} at {release} again", script.text()))
    unlock = lock.release(Script(), layout, inputs.locks, inputs.lock["token"]).text()
    plan.abort = Step("abort", f"leave {act}@{release} as it is", unlock)
    plan.revert = Step("revert", f"leave {act}@{release} as it is", unlock)
    return plan


def cleanup(script: Script, production: Production, host: str, observed: Observed,
            inputs: DeployInputs, changes: Changes) -> Script:
    """After a switch, bound what the host keeps (README, "What Backstage keeps on a host"):
    old releases, trees and venues nothing uses, leftovers of killed commands and gone
    releases, release lists naming releases no longer there, old history, and the act's log
    past its ``log_max_size``."""
    act, release, layout = inputs.act, inputs.bundle.release, observed.layout
    changes.deleted = releases_to_delete(observed, act, production.acts[act].keep_releases,
                                         release, observed.current_release(act))
    sess_cmd.delete_releases(script, layout, act, changes.deleted)
    sess_cmd.delete_trees(script, layout, unused_trees(production, host, observed, act,
                                                       release, changes.deleted))
    kept = (set(observed.releases(act)) - set(changes.deleted)) | {release}
    left = leftovers(observed, act, kept)
    gone = {f"{act}@{r}.ini.retired" for r in changes.deleted} | {p.rsplit("/", 1)[1] for p in left}
    venue = f"{production.acts[act].venue}-{inputs.venue_digest}"
    changes.removed = [*left, *(f"{layout.root}/venues/{name}"
                                for name in venues_to_delete(observed, {venue}, gone))]
    script.step("cleanup").remove(*changes.removed)
    good, bad = release_lists(observed, act, kept - {release})
    if observed.good_releases(act) != good:  # else the switch's line made it right
        script.write_file(layout.good_list(act), "".join(f"{r}\n" for r in [*good, release]))
    if bad != sorted(observed.bad_releases(act)):
        script.write_file(layout.bad_list(act), "".join(f"{r}\n" for r in bad))
    sess_cmd.rotate_log(script, layout, act, production.acts[act].log_max_bytes)
    return history.trim(script, layout)


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

    databases = [d for d in production.acts[act_name].logical_databases if len(migrators(d)) > 1
                 and act_name in migrators(d)]
    return sorted([lock.act_lock(act_name), *(lock.database_lock(d) for d in databases)])


def unused_trees(production: Production, host: str, observed: Observed, act_name: str,
                 release: str, deleted: list[str]) -> list[str]:
    """Trees no release of the production's acts on the host comes from any more.

    A release id ends with its tree's digest (8 digits); a tree removed here costs only a
    delta base, never a release (releases are hard-link copies, not links to trees).
    """
    kept = {release}
    for act in production.acts_on(host):
        kept |= {r for r in observed.releases(act) if act != act_name or r not in deleted}
    used = {r.rsplit("-", 1)[-1] for r in kept}
    return sorted(t for t in observed.trees if t[:8] not in used)


def nginx_health(script: Script, production: Production, act: str, layout: Layout,
                 python: str) -> Script:
    """Check each gig of the act through nginx (also waits out nginx's asynchronous reload)."""
    for gig in production.gigs_of(act):
        sess_cmd.health_via_nginx(script, layout, python, gig_check(production, act, gig, layout))
    return script


def gig_check(production: Production, act: str, gig_name: str, layout: Layout) -> dict:
    """A health check of an act through one of its gigs: over HTTPS when the gig has TLS
    (its plain HTTP port only redirects)."""
    gig = production.gigs[gig_name]
    check = {**health_spec(production, act), "host": gig.domains[0],
             "port": gig.port or layout.http_port}
    if gig.tls_certificate:
        check.update(port=gig.tls_port, tls=True)
    return check


def revert_step(production: Production, host: str, layout: Layout, act: str, release: str,
                previous: str | None, inputs: DeployInputs) -> Step:
    """Put a host that already switched back on its previous release (or on nothing)."""
    script = Script()
    python = production.hosts[host].python
    if previous:
        sess_cmd.revive(script, layout, act, previous)
        sess_cmd.health_check(script, layout, python, act, previous, health_spec(production, act))
        sess_cmd.switch(script, layout, act, previous)
    else:
        sess_cmd.unlink_live(script, layout, act)
    sess_cmd.discard(script, layout, act, release)
    history.append(script, layout, {"time": inputs.time, "event": "rollback", "act": act,
                                    "release": previous, "previous": release,
                                    "by": inputs.by, "reason": "rollout stopped"})
    lock.release(script, layout, inputs.locks, inputs.lock["token"])
    return Step("revert", f"switch {act} back to {previous or 'nothing'}", script.text())


def plan_migrations(production: Production, host: str, layout: Layout, inputs: DeployInputs,
                    venue_dir: str, run_as: RunAs | None = None) -> Step | None:
    """Migrate the act's shared databases once, on one host, with the new release's code."""
    shared = migrated_here(production, inputs.act, shared=True)
    if not shared:
        return None
    release = inputs.bundle.release
    script = Script()
    script.raw(release_cmd.manage_function(
        layout, inputs.act, release, Manage.of(production, inputs.act, layout, release,
                                               venue_dir), run_as))
    release_cmd.migrate(script, shared)
    history.append(script, layout, {"time": inputs.time, "event": "migrate", "act": inputs.act,
                                    "release": release, "databases": list(shared),
                                    "by": inputs.by})
    return Step("migrate", f"migrate {', '.join(shared)} once, on {host}", script.text())
