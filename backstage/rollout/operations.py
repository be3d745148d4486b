"""The operations behind the tasks: setup-stage, deploy-act, start/stop/restart, status, gigs."""

import json

from backstage.artefacts import bundle, requirements, wheelhouse
from backstage.commands import gig as gig_cmd
from backstage.commands import history
from backstage.commands import lock as lock_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script, argv
from backstage.commands.stage import UWSGI_REQUIREMENT
from backstage.errors import BackstageError, HostsFailed, UsageError, known_hint
from backstage.model import Layout, Production
from backstage.model.django import deployment_environment
from backstage.model.secrets import reveal
from backstage.plan import checks
from backstage.plan.deploy import (
    DeployInputs,
    deploy_locks,
    gig_check,
    gig_files,
    health_spec,
    plan_deploy,
)
from backstage.plan.live import live_paths, live_state
from backstage.plan.observed import host_locks
from backstage.plan.preview import describe
from backstage.plan.rollback import plan_rollback
from backstage.plan.stage import plan_stage
from backstage.plan.steps import Step
from backstage.render import Renderer
from backstage.rollout.deploy import Rollout, RolloutReport
from backstage.rollout.hosts import (
    HostRun,
    Options,
    failures,
    new_lock,
    run_on_hosts,
    select_hosts,
    whoami,
)
from backstage.util import utc_now


def setup_stage(production: Production, options: Options) -> dict:
    """Make each selected host a stage; per host, what changed or its error (see
    ``failures``)."""
    renderer = Renderer(production)
    tag = wheelhouse.workstation_tag()

    def uwsgi_wheels(skip):
        return wheelhouse.pack(wheelhouse.for_uwsgi(UWSGI_REQUIREMENT), skip)

    def on_host(run: HostRun):
        observed = run.probe()
        users = tuple(dict.fromkeys(production.act_user(a) for a in production.acts_on(run.name)))
        steps = plan_stage(run.name, run.host.python, run.layout, observed, renderer,
                           uwsgi_wheels, tag, production.group, users)
        for step in steps:
            run.execute(step)
        if not steps:
            options.reporter.info(f"{run.name}  stage is ready: nothing to change")
        return [s.summary for s in steps]

    return run_on_hosts(production, select_hosts(production, options.hosts), options, on_host)


def act_environment(production: Production, act_name: str, layout: Layout) -> str:
    """The env file of an act on a host: its env, its secrets, and Backstage's variables.
    The one place secret values are taken out of their :class:`Secret` wrapping."""
    secrets = production.secrets_of(act_name)
    values = {**production.acts[act_name].env, **secrets,
              **deployment_environment(production, act_name, layout, secrets)}
    return "".join(f"{key}={encode(value)}\n" for key, value in values.items())


def encode(value) -> str:
    return json.dumps(value, sort_keys=True, default=reveal) if isinstance(value, dict) \
        else reveal(value)


def deploy_inputs(production: Production, act_name: str) -> DeployInputs:
    """What the workstation prepares once for a deploy, before any host is contacted: the
    venue's wheels and resolved requirements (see :mod:`backstage.artefacts.requirements`),
    the release."""
    act = require_act(production, act_name)
    venue = production.venues[act.venue]
    resolved = requirements.resolve(venue.requirements)
    digest = resolved.digest(venue.python or "")

    def venue_wheels(skip):
        return wheelhouse.pack(list(resolved.wheels), skip,
                               {f"requirements-{digest}.txt": resolved.text.encode()})

    # Every act's secrets file stays out, so the acts of one repository share one tree.
    secrets = frozenset(a.secrets for a in production.acts.values() if a.secrets)
    return DeployInputs(act_name, bundle.pack(act.source, exclude=secrets), digest, venue_wheels,
                        new_lock("deploy-act", act_name), deploy_locks(production, act_name),
                        resolved.hashes)


def deploy_act(production: Production, act_name: str, options: Options, serial=None,
               max_fail=None, rollback: bool = True) -> RolloutReport:
    """Build once on the workstation, then roll the act out over its hosts."""
    inputs = deploy_inputs(production, act_name)
    names = select_hosts(production, options.hosts, act_name)
    rollout = Rollout(production, names, inputs,
                      lambda layout: act_environment(production, act_name, layout),
                      options, serial=serial, max_fail=max_fail, rollback=rollback)
    return rollout.run()


def plan_act(production: Production, act_name: str, options: Options) -> dict[str, object]:
    """What ``deploy-act`` would change on each host, with diffs: per host, the text to print,
    or the error that kept it from being planned (every host is reported; see ``failures``).

    Read-only: a probe, and at most one more command to read the files the deploy would
    replace. It takes no lock and writes nothing, not even the host helper.
    """
    inputs = deploy_inputs(production, act_name)
    renderer = Renderer(production)
    venue = production.acts[act_name].venue

    def on_host(run: HostRun):
        observed = run.probe({venue: inputs.venue_digest}, install=False)
        plan = plan_deploy(production, run.name, run.layout, observed, renderer, inputs,
                           act_environment(production, act_name, run.layout), dry_run=True)
        paths = plan.changes.replaced
        texts = run.helper("read", "probe", {"texts": paths}, install=False)["texts"] \
            if paths else {}
        holders = list(observed.held_locks(inputs.locks).values())
        return describe(run.name, act_name, plan, texts, holders[0] if holders else None)

    names = select_hosts(production, options.hosts, act_name)
    return run_on_hosts(production, names, options, on_host)


def rollback(production: Production, act_name: str, to: str | None, options: Options) -> dict:
    """Switch an act back to its previous good release (or ``to``) on its hosts; per host,
    the releases or the error (see ``failures``)."""
    require_act(production, act_name)
    names = select_hosts(production, options.hosts, act_name)
    holder = new_lock("rollback", act_name)

    def on_host(run: HostRun):
        observed = run.probe()
        target, steps = plan_rollback(production, run.name, run.layout, observed, act_name, to,
                                      holder)
        run.run_locked(steps, holder["token"], [lock_cmd.act_lock(act_name)])
        return {"release": target, "previous": observed.current_release(act_name)}

    return run_on_hosts(production, names, options, on_host)


def lock_scope(production: Production, host: str, act_name: str | None) -> list[str]:
    """The act's lock, or (no act) the lock of every act of the production on the host."""
    acts = production.acts_on(host)
    return sorted(lock_cmd.act_lock(a) for a in acts if act_name in (None, a))


def lock(production: Production, message: str, options: Options,
         act_name: str | None = None) -> dict:
    """Take an act's lock (or every act's) on hosts by hand (e.g. during maintenance) until
    ``unlock``: its deploys, rollbacks, starts, stops and restarts are refused meanwhile."""
    holder = new_lock("lock", act_name, message)
    if act_name is not None:
        require_act(production, act_name)

    def on_host(run: HostRun):
        locks = lock_scope(production, run.name, act_name)
        if not locks:
            options.reporter.info(f"{run.name}  no act to lock here")
            return None
        checks.not_locked(run.name, run.probe(), locks)
        script = lock_cmd.acquire(Script(), run.layout, locks, holder)
        history.append(script, run.layout, {"time": holder["time"], "event": "lock",
                                            "act": act_name, "locks": locks,
                                            "by": holder["by"], "message": message})
        run.run_locked([Step("lock", "", script.text())], holder["token"], locks)
        return holder

    return run_on_hosts(production, select_hosts(production, options.hosts), options, on_host)


def unlock(production: Production, options: Options, act_name: str | None = None) -> dict:
    """Clear locks, whoever holds them: the act's (and the database locks its holder took
    with it), or (no act) every lock on the host; history records whose they were."""
    if act_name is not None:
        require_act(production, act_name)

    def on_host(run: HostRun):
        held = run.probe().held_locks(host_locks(production, run.name))
        if act_name is not None:
            held = taken_with(held, lock_cmd.act_lock(act_name))
        if not held:
            options.reporter.info(f"{run.name}  not locked")
            return None
        script = lock_cmd.force_release(Script(), run.layout, list(held))
        cleared = holders_of(held)
        for holder, locks in cleared:
            history.append(script, run.layout, {"time": utc_now(), "event": "unlock",
                                                "by": whoami(), "holder": holder, "locks": locks,
                                                "stale": checks.lock_is_stale(holder)})
        run.run_command("unlock", script.text())
        for holder, locks in cleared:
            stale = "stale " if checks.lock_is_stale(holder) else ""
            options.reporter.info(f"{run.name}  unlocked ({stale}lock of {holder.get('by')}, "
                                  f"pid {holder.get('pid')}, {holder.get('time')}: "
                                  f"{', '.join(locks)})")
        return [holder for holder, _ in cleared]

    return run_on_hosts(production, select_hosts(production, options.hosts), options, on_host)


def taken_with(held: dict[str, dict], lock_name: str) -> dict[str, dict]:
    """A held lock and those its holder took with it (a deploy's database locks)."""
    own = held.get(lock_name)
    token = own.get("token") if own else None
    return {name: holder for name, holder in held.items()
            if name == lock_name or (token and holder.get("token") == token)}


def holders_of(held: dict[str, dict]) -> list[tuple[dict, list[str]]]:
    """Group held locks by holder (one token each), tokens left out: they free locks."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for lock_name, holder in sorted(held.items()):
        key = holder.get("token") or lock_name
        public = {k: v for k, v in holder.items() if k != "token"}
        groups.setdefault(key, (public, []))[1].append(lock_name)
    return list(groups.values())


def history_lines(production: Production, limit: int,
                  options: Options) -> tuple[list[dict], HostsFailed | None]:
    """The last ``limit`` history entries across the hosts that could be read, newest first,
    and the hosts that could not."""
    def on_host(run: HostRun):
        text = run.run_command("history", argv("tail", "-n", str(limit), run.layout.history)
                               + " 2>/dev/null || true")
        return [history_entry(line) for line in text.splitlines() if line.strip()]

    results = run_on_hosts(production, select_hosts(production, options.hosts), options, on_host)
    entries = [{"host": host, **entry} for host, lines in results.items()
               if not isinstance(lines, BackstageError) for entry in lines]
    return sorted(entries, key=lambda e: e.get("time", ""), reverse=True)[:limit], \
        failures(results)


def history_entry(line: str) -> dict:
    """One line of a host's history; one that is not JSON (cut short by a full disk, say) is
    shown as it is."""
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    return entry if isinstance(entry, dict) else {"event": "unreadable", "line": line}


def require_act(production: Production, act_name: str):
    if act_name not in production.acts:
        raise UsageError(f"unknown act {act_name!r} in {production.path}"
                         + known_hint(act_name, production.acts))
    return production.acts[act_name]


def sess_action(production: Production, act_name: str, action: str, options: Options) -> dict:
    """``start``, ``stop`` or ``restart`` the live release of an act on its hosts, under the
    act's lock (not while a deploy or rollback of it runs); per host, the release or the error
    (see ``failures``)."""
    require_act(production, act_name)
    names = select_hosts(production, options.hosts, act_name)
    python_of = {h: production.hosts[h].python for h in names}
    holder, locks = new_lock(action, act_name), [lock_cmd.act_lock(act_name)]

    def on_host(run: HostRun):
        observed = run.probe()
        release = observed.current_release(act_name)
        if release is None:
            raise BackstageError(f"{run.name}: {act_name} was never deployed here")
        checks.not_locked(run.name, observed, locks)
        layout = run.layout
        script = lock_cmd.acquire(Script(), layout, locks, holder)
        if action == "stop":
            sess_cmd.stop(script, layout, python_of[run.name], act_name, release)
        elif action == "start":
            sess_cmd.start(script, layout, act_name, release)
            sess_cmd.health_check(script, layout, python_of[run.name], act_name, release,
                                  health_spec(production, act_name))
        else:
            workers = live_workers(run, act_name, release)
            sess_cmd.restart(script, layout, act_name, release)
            sess_cmd.wait_reloaded(script, python_of[run.name], layout, act_name, release, workers)
        history.append(script, layout, {"time": utc_now(), "event": action, "act": act_name,
                                        "release": release, "by": whoami()})
        lock_cmd.release(script, layout, locks, holder["token"])
        run.run_locked([Step(action, "", script.text())], holder["token"], locks)
        return release

    return run_on_hosts(production, names, options, on_host)


def status_spec(production: Production, layout: Layout, acts: list[str]) -> dict:
    return {
        "vassals": layout.vassals,
        "acts": {a: {"stats": layout.stats_socket(a, "{release}"), **live_paths(layout, a)}
                 for a in acts},
    }


def act_status(run: HostRun, acts: list[str]) -> dict:
    """Per act: its sesses, its links, and ``broken``: why its live release does not serve
    (None when it does, or when it was never deployed or was stopped on purpose)."""
    spec = status_spec(run.production, run.layout, acts)
    found = run.helper("status", "status", spec, install=False)["acts"]
    for act, info in found.items():
        info["broken"] = live_state(run.layout, act, info.pop("facts")).broken
    return found


def live_workers(run: HostRun, act: str, release: str) -> list[int]:
    sesses = act_status(run, [act])[act]["sesses"]
    return [w for s in sesses if s["release"] == release for w in s["workers"]]


def status(production: Production, act_name: str | None, options: Options) -> dict:
    """Per host and act: state, pids, release, socket, HTTP port, uptime; or the host's error
    (every host is reported; see ``failures``)."""
    if act_name:
        require_act(production, act_name)
    names = select_hosts(production, options.hosts)

    def on_host(run: HostRun):
        acts = status_acts(production, run.name, act_name)
        return act_status(run, acts) if acts else {}

    return run_on_hosts(production, names, options, on_host)


def status_acts(production: Production, host: str, act_name: str | None) -> list[str]:
    """The acts ``status`` shows on a host: ``act_name`` if it plays there, else all there."""
    return [a for a in ([act_name] if act_name else production.acts_on(host))
            if a in production.acts_on(host)]


def book_gig(production: Production, gig_name: str, options: Options, cancel: bool = False):
    """Install (or remove) one gig's nginx server block, tested with ``nginx -t`` first; per
    host, whether it changed or its error."""
    if gig_name not in production.gigs:
        raise UsageError(f"unknown gig {gig_name!r} in {production.path}"
                         + known_hint(gig_name, production.gigs))
    act_name = production.gigs[gig_name].act
    renderer = Renderer(production)
    names = select_hosts(production, options.hosts, act_name)

    def on_host(run: HostRun):
        observed = run.probe()
        path = run.layout.gig_conf(gig_name)
        if cancel:
            files, removed = {}, ([path] if observed.has(path) else [])
        else:
            files = {p: t for p, t in gig_files(production, act_name, run.layout, renderer,
                                                observed).items() if p == path}
            removed = []
        script = gig_cmd.install_gigs(Script(), run.layout, files, removed, observed.services)
        if not script:
            options.reporter.info(f"{run.name}  gig {gig_name} is already "
                                  + ("cancelled" if cancel else "booked"))
            return False
        if not cancel and observed.current_release(act_name):
            sess_cmd.health_via_nginx(script, run.layout, run.host.python,
                                      gig_check(production, act_name, gig_name, run.layout))
        history.append(script, run.layout, {"time": utc_now(), "by": whoami(), "gig": gig_name,
                                            "event": "cancel-gig" if cancel else "book-gig"})
        run.run_command("gig", script.text())
        return True

    return run_on_hosts(production, names, options, on_host)
