"""The deploy stack's Python API: a production, with every task as a method.

::

    from backstage import Production
    p = Production.load("inventories/shop.toml")   # or "shop", or nothing (see find_inventory)
    report = p.deploy("storefront", serial=2)
    report.exit_code, report.as_dict()             # what `deploy-act --json` prints

Each method runs what the task of the same name runs (the ``backstage`` program and ``fab``
are built on this class) and returns a report: per host, the result or the error that
stopped the operation there; ``exit_code``, the program's exit code for it; ``as_dict()``,
what ``--json`` prints; ``check()`` raises the hosts' failure, if any. Bad input (an unknown
act, an empty ``hosts``, a bad number) raises a :class:`~backstage.errors.BackstageError`
before any host is contacted; a host that fails does not raise, it is in the report.

Nothing is printed unless asked: ``progress=True`` shows the program's progress lines on
stderr (or pass a ``rich.console.Console``). Errors are redacted with this production's
secrets, and no one else's.
"""

import datetime
import os
import sys
import threading
import time
from collections.abc import Callable

from rich.console import Console

from backstage.artefacts import wheelhouse
from backstage.artefacts.locks import resolve_pins
from backstage.artefacts.wheelhouse import cache_dir
from backstage.commands import snapshots as snapshots_cmd
from backstage.commands.lock import act_lock
from backstage.commands.stage import UWSGI_REQUIREMENT
from backstage.engine.builders import BUILDER_ROLE, PlatformWheels, builders_first, platform_inputs
from backstage.engine.executor import failures, run_on_hosts, select_hosts
from backstage.engine.hooks import run_hook
from backstage.engine.hosts import HostRun, Options
from backstage.engine.report import Reporter
from backstage.engine.rollout import Rollout, limits
from backstage.errors import BackstageError, StepFailed, UsageError, known_hint
from backstage.facts.status import read_status, read_texts, status_spec, workers_of
from backstage.model import Production as Inventory
from backstage.model import load_production
from backstage.model.inventory import check_modules
from backstage.model.locate import find_inventory
from backstage.operations import certs, checks, dns, history, hooks, schema
from backstage.operations import snapshots as snapshots_op
from backstage.operations.certs import acme_gigs, challenge_patches, due, http01_answers
from backstage.operations.converge import decide, plan_back
from backstage.operations.deploy import act_environment, deploy_inputs, plan_deploy, require_act
from backstage.operations.env import compare_env, env_spec, plain_keys
from backstage.operations.gig import plan_gig
from backstage.operations.lock import lock_scope, new_lock, plan_lock, plan_unlock, whoami
from backstage.operations.logs import plan_logs
from backstage.operations.maintenance import SWITCHES, plan_maintenance
from backstage.operations.manage import command_hosts, command_words, plan_command
from backstage.operations.preview import describe
from backstage.operations.releases import rollback_target
from backstage.operations.remove import plan_remove
from backstage.operations.rollback import plan_rollback
from backstage.operations.sess import live_release, plan_sess
from backstage.operations.snapshots import Snapshot
from backstage.operations.stage import plan_provisioning, plan_stage
from backstage.operations.status import status_acts
from backstage.producer import notify
from backstage.producer.acme import AcmeDirectory, CertificateStore
from backstage.producer.powerdns import PowerDNS
from backstage.render import Renderer
from backstage.reports import (
    CommandReport,
    DnsReport,
    EnvReport,
    GigReport,
    HistoryReport,
    HostsReport,
    LogsReport,
    MaintenanceReport,
    PlanReport,
    RemoveReport,
    RestoreReport,
    RollbackReport,
    SessReport,
    SnapshotsReport,
    StatusReport,
)
from backstage.transport.base import Pty
from backstage.transport.terminal import pty_of, raw_terminal
from backstage.util import utc_now

__all__ = ["Production"]  # what it returns: backstage.reports

DEFAULT_HISTORY = 20
DEFAULT_LOG_LINES = 50


# --- checking arguments as the command line does ----------------------------------------------

def not_empty(value, option: str):
    """An option's value; an empty one is an error, not the default (an empty variable in a
    script must not mean every host, all at once, or the previous release)."""
    if isinstance(value, str) and not value.strip():
        raise UsageError(f"{option}: empty; give a value, or leave {option} out for its default")
    return value


def whole_number(value, option: str, default: int) -> int:
    """A number of at least 1, given as an int or as the command line's text."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(f"{option}: expected a whole number of at least 1, got {str(value)!r}")
    return number


def host_list(hosts: str | list[str] | None) -> list[str] | None:
    """Hosts as a list; ``"a,b"`` is split. ``""`` or ``","`` selects nothing, which every
    operation refuses (see ``select_hosts``)."""
    if isinstance(hosts, str):
        return [h.strip() for h in hosts.split(",") if h.strip()]
    return None if hosts is None else list(hosts)


def writer(stream) -> Callable[[bytes], None]:
    """Write bytes to a binary stream as they come."""
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()
    return write


def is_terminal(stream) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def input_of(stdin) -> bytes | int | None:
    """A command's stdin as a transport takes it: bytes, a file descriptor, or nothing."""
    if stdin is None or isinstance(stdin, (bytes, int)):
        return stdin
    try:
        return stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return stdin.read()


class Lines:
    """Bytes as they come, handed on as whole lines of text (a pseudo-terminal's ``\\r``
    dropped); :meth:`close` hands on an unfinished last line."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit, self.pending = emit, b""

    def __call__(self, data: bytes) -> None:
        *complete, self.pending = (self.pending + data).split(b"\n")
        for line in complete:
            self.emit(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self.pending:
            self.emit(self.pending.decode("utf-8", "replace").rstrip("\r"))


PRINTING = threading.Lock()


def print_line(host: str, line: str) -> None:
    """What ``logs`` prints: the host, then the line (whole lines, from many threads)."""
    with PRINTING:
        print(f"{host} | {line}", flush=True)


def command_input(stdin, stdout, tty: bool | None) -> tuple[bytes | int | None, Pty | None, bool]:
    """A command's stdin (see :func:`input_of`), its pseudo-terminal if it gets one, and
    whether the user's terminal is both its ends. By default it gets one when both stdin and
    stdout are a terminal, as for a person at one: ``manage ... dumpdata > file`` typed at a
    terminal must get the command's stdout alone, not a terminal's merged, CRLF output."""
    data = input_of(stdin)
    terminal = isinstance(data, int) and os.isatty(data) and is_terminal(stdout)
    if not (terminal if tty is None else tty):
        return data, None, terminal
    return data, pty_of(data) if terminal else Pty(), terminal


# --- the production ------------------------------------------------------------------------------

class Production:
    """A loaded production and the operations on its hosts.

    ``hosts`` narrows every operation to these hosts (a list, or ``"a,b"``); each method's
    own ``hosts`` narrows one call. ``accept_new_host_keys`` trusts and records the keys of
    hosts not yet in known_hosts. ``progress`` prints progress lines (``verbose``: every
    step, probes too, and transfer totals).
    """

    def __init__(self, inventory: Inventory, *, hosts: str | list[str] | None = None,
                 accept_new_host_keys: bool = False, progress: bool | Console = False,
                 verbose: bool = False):
        self.inventory = inventory
        self.hosts = host_list(hosts)
        self.accept_new_host_keys = accept_new_host_keys
        self.redact = inventory.redactor()
        console = progress if isinstance(progress, Console) else \
            Console(stderr=True, highlight=False, quiet=not progress)
        self.reporter = Reporter(console, verbose=verbose, redact=self.redact)

    @classmethod
    def load(cls, inventory: str | os.PathLike | None = None, **options) -> "Production":
        """Load an inventory: a path, a production's name (``inventories/<name>.toml``), or
        nothing: ``$BACKSTAGE_INVENTORY``, else the only file in ``./inventories/``.
        ``options`` are the constructor's. Raises InventoryError or UsageError."""
        return cls(load_production(find_inventory(inventory, "inventory")), **options)

    @property
    def name(self) -> str:
        return self.inventory.name

    @property
    def path(self):
        return self.inventory.path

    def __repr__(self) -> str:
        return f"Production({self.name!r}, path={str(self.path)!r})"

    def summary(self) -> str:
        """What ``check`` prints: the file is valid (its acts' modules in their trees), and
        what it declares."""
        inv = self.inventory
        check_modules(inv)
        return (f"{inv.path}: production {inv.name!r} is valid: {len(inv.hosts)} hosts, "
                f"{len(inv.venues)} venues, {len(inv.acts)} acts, {len(inv.gigs)} gigs")

    def _options(self, hosts=None, parallel=None) -> Options:
        """One operation's options (a fresh ``stats``: commands and bytes sent per host)."""
        options = Options(hosts=self.hosts if hosts is None else host_list(hosts),
                          accept_new_host_keys=self.accept_new_host_keys,
                          reporter=self.reporter, redact=self.redact)
        options.parallel = whole_number(parallel, "--parallel", options.parallel)
        return options

    def _on_hosts(self, options: Options, operation, act: str | None = None) -> dict:
        """Run ``operation(run)`` on the selected hosts (those ``act`` plays on)."""
        names = select_hosts(self.inventory, options.hosts, act)
        return run_on_hosts(self.inventory, names, options, operation)

    def _act(self, act: str):
        return require_act(self.inventory, act)

    # --- the tasks -----------------------------------------------------------------------------

    def setup_stage(self, *, hosts=None, dry_run: bool = False) -> HostsReport:
        """Make hosts ready: packages, directories, act users, uWSGI Emperor, nginx
        (idempotent); per host, the summaries of the steps it took (``dry_run``: would take,
        changing nothing, not even the host helper)."""
        inventory, renderer = self.inventory, Renderer(self.inventory)
        options = self._options(hosts)
        pins = resolve_pins(None, (UWSGI_REQUIREMENT,))
        wheels = PlatformWheels(inventory, options)

        def on_host(run: HostRun):
            observed = run.probe(install=not dry_run)
            users = tuple(dict.fromkeys(inventory.act_user(a) for a in inventory.acts_on(run.name)))
            builder = BUILDER_ROLE in run.host.roles
            early = [] if dry_run or not builder else \
                plan_provisioning(run.name, run.layout, observed)
            for step in early:  # a builder's compiler first: it compiles uWSGI in this run
                run.execute(step)
            observed = run.probe(install=False) if early else observed

            def uwsgi_wheels(skip):  # the Emperor's uWSGI, for this host's platform
                return wheelhouse.pack(list(wheels.resolved(pins, run, observed).wheels), skip)

            steps = plan_stage(run.name, run.host.python, run.layout, observed, renderer,
                               uwsgi_wheels, inventory.group, users, builder)
            if any(s.payload for s in steps) and not dry_run:  # an unservable platform fails
                wheels.resolved(pins, run, observed)
            for step in steps:
                if dry_run:
                    self.reporter.info(f"{run.name}  would {step.summary}")
                else:
                    run.execute(step)
            if not early and not steps:
                self.reporter.info(f"{run.name}  stage is ready: nothing to change")
            return [s.summary for s in early + steps]

        try:
            results: dict[str, object] = {}
            for wave in builders_first(inventory, select_hosts(inventory, options.hosts)):
                results.update(run_on_hosts(inventory, wave, options, on_host))
            return HostsReport(self.name, results)
        finally:
            wheels.close()

    def deploy(self, act: str, *, hosts=None, serial: int | str | None = None,
               max_fail: int | str | None = None, rollback: bool = True,
               parallel: int | None = None, dry_run: bool = False,
               allow_destructive: bool = False):
        """Roll ``act`` out (``deploy-act``): a RolloutReport. ``serial``/``max_fail``: a
        number of hosts or ``"N%"``. ``dry_run``: check the same arguments and return
        :meth:`plan`'s report instead, changing nothing. ``allow_destructive``: apply
        destructive or irreversible migrations (else the rollout stops before migrating)."""
        options = self._options(hosts, parallel)
        serial, max_fail = not_empty(serial, "--serial"), not_empty(max_fail, "--max-fail")
        limits(serial, max_fail, 1)  # as the rollout will, before anything is built
        if dry_run:
            return self._plan(act, options)
        wheels = PlatformWheels(self.inventory, options)
        inputs = platform_inputs(self.inventory, act, wheels)  # before any host is contacted
        inputs.allow_destructive = allow_destructive
        names = select_hosts(self.inventory, options.hosts, act)
        records = self._records(self.inventory.gigs_of(act))  # the Producer, read first
        inputs.certificates = self._certificates(acme_gigs(self.inventory, act))
        inputs.hosts = tuple(names)
        self._hook(act, "before_deploy", inputs.release, None, names)
        started = time.monotonic()
        rollout = Rollout(self.inventory, names, inputs,
                          lambda layout: act_environment(self.inventory, act, layout),
                          options, serial=serial, max_fail=max_fail, rollback=rollback)
        try:
            report = rollout.run()
        finally:
            wheels.close()
        if report.exit_code == 0:
            self._change_records(records)
        before = ",".join(sorted({o.release_before for o in report.outcomes.values()
                                  if o.release_before}))
        outcome = "deployed" if report.exit_code == 0 else "failed"
        self._hook(act, "after_deploy", report.release, before, names, outcome,
                   time.monotonic() - started)
        self._notify("deploy", act, release=report.release, previous=before, hosts=names,
                     outcome=outcome, duration=round(time.monotonic() - started, 1))
        return report

    def _notify(self, event: str, act: str, **fields) -> None:
        """Tell the ``[notify]`` webhooks; one that fails is reported, never raised."""
        document = {"event": event, "production": self.name, "act": act, "by": whoami(),
                    "time": utc_now(), **fields}
        for line in notify.send(self.inventory.notify, document):
            self.reporter.info(line)

    def _hook(self, act: str, name: str, release, previous, hosts, outcome=None,
              duration=None) -> None:
        """Run a workstation hook of the act; only ``before_deploy`` failing stops anything."""
        variables = hooks.variables(self.inventory, act, release, previous, hosts, outcome,
                                    duration)
        run_hook(self.inventory, act, name, variables, self.reporter,
                 fatal=name == "before_deploy")

    def acts_to_deploy(self, acts: str | list[str] | None = None, every: bool = False
                       ) -> list[str]:
        """The acts a deploy of several rolls out, in order: ``acts`` (a list, or names
        separated by commas) or ``every`` act, each after the acts it ``needs``."""
        if isinstance(acts, str):
            acts = [a.strip() for a in acts.split(",") if a.strip()]
        if bool(acts) == every:
            raise UsageError("name the acts to deploy, or --all (not both)")
        for act in acts or []:
            require_act(self.inventory, act)
        return self.inventory.deploy_order(list(self.inventory.acts) if every else acts)

    def plan(self, act: str, *, hosts=None) -> PlanReport:
        """What deploying ``act`` would change on each host, with diffs; takes no lock and
        changes nothing, not even the host helper: a probe, at most one more command to read
        the files the deploy would replace, and for an act with databases one to ask the new
        code, in a scratch copy removed after, which migrations it would apply
        (``PlanReport.migrations``)."""
        return self._plan(act, self._options(hosts))

    def _plan(self, act: str, options: Options) -> PlanReport:
        wheels = PlatformWheels(self.inventory, options, compile=False)
        template = platform_inputs(self.inventory, act, wheels)
        renderer = Renderer(self.inventory)
        migrations: dict[str, list[dict]] = {}

        def on_host(run: HostRun):
            observed = run.probe(install=False)
            inputs = template.per_host(run, observed)
            env_text = act_environment(self.inventory, act, run.layout)
            plan = plan_deploy(self.inventory, run.name, run.layout, observed, renderer, inputs,
                               env_text, dry_run=True)
            paths = plan.changes.replaced
            texts = read_texts(run.helper("read", "probe", {"texts": paths}, install=False)) \
                if paths else {}
            holders = list(observed.held_locks(inputs.locks).values())
            text = describe(run.name, act, plan, texts, holders[0] if holders else None)
            step = None if plan.noop or plan.repair else schema.plan_step(
                self.inventory, run.name, run.layout, observed, renderer, inputs, env_text)
            if step:
                try:
                    run.execute(step)
                except StepFailed as exc:  # the new code's own error: the rest of the plan holds
                    return text + f"  migrate  not known: {exc}\n"
                migrations[run.name] = run.migration_plans
            return text + schema.plan_text(plan, step, run.migration_plans,
                                           bool(schema.databases_of(self.inventory, act)))

        try:
            results = self._on_hosts(options, on_host, act)
        finally:
            wheels.close()
        records = self._records(self.inventory.gigs_of(act), check=False)
        return PlanReport(self.name, results, act=act, dns=dns_lines(records),
                          migrations=migrations)

    def rollback(self, act: str, *, to: str | None = None, hosts=None,
                 migrate_back: bool = False, force: bool = False) -> RollbackReport:
        """Switch ``act`` back to its previous good release, or to release ``to``; per host,
        ``{"release": now live, "previous": live before, "schema": what happened to migrations
        the release does not know}``. A release that predates applied migrations is refused
        unless ``migrate_back`` (unapply them first) or ``force`` (go back anyway)."""
        to = not_empty(to, "--to")
        self._act(act)
        if migrate_back and force:
            raise UsageError("--migrate-back and --force: give one of them")
        holder = new_lock("rollback", act)
        options = self._options(hosts, 1 if migrate_back else None)  # shared databases: once

        def on_host(run: HostRun):
            observed = run.probe()
            target = rollback_target(run.name, observed, act, to)
            step = schema.unknown_step(self.inventory, run.name, run.layout, observed, act, target)
            unknown = schema.read_unknown(run.execute(step)) if step else {}
            note = schema.decide(run.name, act, target, unknown, migrate_back, force)
            back = (lambda script: schema.migrate_back(
                script, self.inventory, run.layout, act, observed.current_release(act), unknown,
                schema.run_as_of(self.inventory, run.name, run.layout, observed, act))) \
                if migrate_back and unknown else None
            target, steps = plan_rollback(self.inventory, run.name, run.layout, observed, act,
                                          target, holder, back)
            run.run_locked(steps, holder["token"], lock_scope(self.inventory, run.name, act))
            return {"release": target, "previous": observed.current_release(act), "schema": note}

        started = time.monotonic()
        report = RollbackReport(self.name, self._on_hosts(options, on_host, act),
                                act=act)
        done = report.done.values()
        release = ",".join(sorted({r["release"] for r in done}))
        previous = ",".join(sorted({r["previous"] or "" for r in done}))
        outcome = "rolled back" if report.exit_code == 0 else "failed"
        self._hook(act, "after_rollback", release, previous, list(report.results), outcome,
                   time.monotonic() - started)
        self._notify("rollback", act, release=release, previous=previous,
                     hosts=list(report.results), outcome=outcome,
                     duration=round(time.monotonic() - started, 1))
        return report

    def _sess(self, action: str, act: str, hosts) -> SessReport:
        """``start``, ``stop`` or ``restart`` the live release of ``act``, under its lock."""
        self._act(act)
        holder = new_lock(action, act)

        def on_host(run: HostRun):
            observed = run.probe()
            release = live_release(run.name, observed, act)
            workers = workers_of(self._read_status(run, [act]), act, release) \
                if action == "restart" else []
            step = plan_sess(self.inventory, run.name, run.layout, observed, act, action, holder,
                             workers)
            run.run_locked([step], holder["token"], lock_scope(self.inventory, run.name, act))
            return release

        results = self._on_hosts(self._options(hosts), on_host, act)
        return SessReport(self.name, results, act=act, action=action)

    def start(self, act: str, *, hosts=None) -> SessReport:
        """Start ``act``'s live release (after :meth:`stop`), health-checked."""
        return self._sess("start", act, hosts)

    def stop(self, act: str, *, hosts=None) -> SessReport:
        """Stop ``act``: its gigs answer 502 until :meth:`start`."""
        return self._sess("stop", act, hosts)

    def restart(self, act: str, *, hosts=None) -> SessReport:
        """Reload ``act``'s workers gracefully: new processes, same release."""
        return self._sess("restart", act, hosts)

    @staticmethod
    def _read_status(run: HostRun, acts: list[str]) -> dict:
        answer = run.helper("status", "status", status_spec(run.layout, acts), install=False)
        return read_status(run.layout, answer)

    def status(self, act: str | None = None, *, hosts=None) -> StatusReport:
        """Per host and act (``act``, or all): releases with a vassal, state, pids, socket,
        HTTP port, uptime, and why the live release does not serve, if it does not."""
        if act:
            self._act(act)

        certificates, now = {}, datetime.datetime.now(datetime.UTC)

        def on_host(run: HostRun):
            acts = status_acts(self.inventory, run.name, act)
            paths = certs.certificate_paths(self.inventory, run.layout, run.name)
            if paths:
                texts = read_texts(run.helper("read", "probe", {"texts": list(paths.values())},
                                              install=False))
                certificates[run.name] = {g: certs.describe(texts[p], now)
                                          for g, p in paths.items() if texts.get(p)}
            return self._read_status(run, acts) if acts else {}

        results = self._on_hosts(self._options(hosts), on_host)
        shown = {h: status_acts(self.inventory, h, act) for h in results}
        return StatusReport(self.name, results, act=act, shown=shown, certificates=certificates,
                            dns=self._dns_states())

    def _dns_states(self) -> dict[str, str]:
        """Per gig, whether its records are as wanted (``status``); the error in one line when
        the Producer cannot be asked."""
        inventory = self.inventory
        records = dns.wanted(inventory, list(inventory.gigs)) if inventory.producer else {}
        if not records:
            return {}
        try:
            return dns.gig_states(inventory, self._zones(records)[1])
        except BackstageError as error:
            return {gig: f"unknown ({error})" for gig in inventory.gigs}

    def history(self, *, limit: int = DEFAULT_HISTORY, hosts=None) -> HistoryReport:
        """The last ``limit`` deploys, rollbacks, starts, stops, locks... newest first, across
        the hosts that could be read (and the hosts that could not)."""
        limit = whole_number(limit, "--limit", DEFAULT_HISTORY)

        def on_host(run: HostRun):
            return history.entries(run.execute(history.plan_history(run.layout, limit)))

        report = HostsReport(self.name, self._on_hosts(self._options(hosts), on_host))
        return HistoryReport(self.name, history.newest(report.done, limit), report.failure)

    def lock(self, message: str, *, act: str | None = None, hosts=None) -> HostsReport:
        """Hold an act's lock (``act``), or every act's, by hand (e.g. during maintenance):
        its deploys, rollbacks, starts, stops and restarts are refused until unlock."""
        if act is not None:
            self._act(act)
        holder = new_lock("lock", act, message)

        def on_host(run: HostRun):
            locks = lock_scope(self.inventory, run.name, act)
            if not locks:
                self.reporter.info(f"{run.name}  no act to lock here")
                return None
            step = plan_lock(run.name, run.layout, run.probe(), locks, holder, act)
            run.run_locked([step], holder["token"], locks)
            return holder

        return HostsReport(self.name, self._on_hosts(self._options(hosts), on_host))

    def unlock(self, *, act: str | None = None, hosts=None) -> HostsReport:
        """Clear locks, whoever holds them: the act's (and the database locks its holder took
        with it), or every lock; per host, whose they were (or None). History records it."""
        if act is not None:
            self._act(act)

        def on_host(run: HostRun):
            step, cleared = plan_unlock(self.inventory, run.name, run.layout, run.probe(), act)
            if step is None:
                self.reporter.info(f"{run.name}  not locked")
                return None
            run.execute(step)
            for holder, locks in cleared:
                stale = "stale " if checks.lock_is_stale(holder) else ""
                self.reporter.info(f"{run.name}  unlocked ({stale}lock of {holder.get('by')}, "
                                   f"pid {holder.get('pid')}, {holder.get('time')}: "
                                   f"{', '.join(locks)})")
            return [holder for holder, _ in cleared]

        return HostsReport(self.name, self._on_hosts(self._options(hosts), on_host))

    def book_gig(self, gig: str, *, hosts=None) -> GigReport:
        """Install a gig's nginx server block (``nginx -t`` first); per host, whether it
        changed. Then, with a Producer, its domains' records follow (``dns``: what changed)."""
        return self._gig(gig, hosts, cancel=False)

    def cancel_gig(self, gig: str, *, hosts=None) -> GigReport:
        """Remove a gig's records (with a Producer), then its nginx server block; per host,
        whether it changed."""
        return self._gig(gig, hosts, cancel=True)

    def _require_gig(self, gig: str) -> None:
        if gig not in self.inventory.gigs:
            raise UsageError(f"unknown gig {gig!r} in {self.inventory.path}"
                             + known_hint(gig, self.inventory.gigs))

    def _gig(self, gig: str, hosts, cancel: bool) -> GigReport:
        inventory = self.inventory
        self._require_gig(gig)
        records = self._records([gig], booked=not cancel)  # read (and refused) before any change
        acme = not cancel and inventory.gigs[gig].tls == "acme"
        certificates = self._certificates([gig]) if acme else {}
        changed = self._change_records(records) if cancel else []
        renderer, holder = Renderer(inventory), new_lock("gig")

        def on_host(run: HostRun):
            step = plan_gig(inventory, run.name, run.layout, run.probe(), renderer, gig, cancel,
                            holder, certificates)
            if step is None:
                self.reporter.info(f"{run.name}  gig {gig} is already "
                                   + ("cancelled" if cancel else "booked"))
                return False
            run.execute(step)
            return True

        report = GigReport(self.name, self._on_hosts(self._options(hosts), on_host,
                                                     inventory.gigs[gig].act), gig=gig)
        report.dns = changed if cancel or report.failure else self._change_records(records)
        return report

    def manage(self, act: str, args, *, hosts=None, all_hosts: bool = False, stdin=None,
               stdout=None, stderr=None, tty: bool | None = None) -> CommandReport:
        """Run ``manage.py ARGS`` in ``act``'s live release, as the act runs (its venue, env
        file and secrets, unix user, working directory) on the host that runs its migrations,
        or ``hosts``, or every host of the act (``all_hosts``, one after the other).

        ``stdin``: bytes, a file or a file descriptor (streamed); ``stdout``/``stderr``: binary
        streams (default: this process's); ``tty``: give the command a pseudo-terminal
        (default: when ``stdin`` and ``stdout`` are a terminal, see :func:`command_input`).
        Per host, the command's exit status."""
        return self._command(act, command_words(args, "manage"), True, hosts, all_hosts,
                             stdin, stdout, stderr, tty)

    def exec(self, act: str, command, *, hosts=None, all_hosts: bool = False, stdin=None,
             stdout=None, stderr=None, tty: bool | None = None) -> CommandReport:
        """Run any ``command`` (a list of words) as :meth:`manage` runs manage.py, the venue's
        programs first on the PATH."""
        return self._command(act, command_words(command, "exec"), False, hosts, all_hosts,
                             stdin, stdout, stderr, tty)

    def _command(self, act, words, django, hosts, all_hosts, stdin, stdout, stderr, tty):
        wanted = command_hosts(self.inventory, act, self.hosts if hosts is None
                               else host_list(hosts), all_hosts)
        options = self._options(wanted, parallel=1)
        stdout = stdout or sys.stdout.buffer
        data, pty, terminal = command_input(stdin, stdout, tty)
        several = len(select_hosts(self.inventory, wanted, act)) > 1
        if several and isinstance(data, int) and not pty:  # each host gets all of it
            with open(data, "rb", closefd=False) as source:
                data = source.read()
        out, err = writer(stdout), writer(stderr or sys.stderr.buffer)
        active: list[HostRun] = []

        def on_host(run: HostRun):
            command = plan_command(self.inventory, run.name, run.layout, run.probe(install=False),
                                   act, words, django)
            if several:
                err(f"--- {run.name}\r\n".encode() if pty else f"--- {run.name}\n".encode())
            active[:] = [run]
            return run.stream(command, stdin=data, out=out, err=err, pty=pty,
                              cancelled=options.cancelled)

        if not (pty and terminal):
            return CommandReport(self.name, self._on_hosts(options, on_host, act), act=act)
        with raw_terminal(data, lambda pty: active and active[0].transport.resize(pty)):
            return CommandReport(self.name, self._on_hosts(options, on_host, act), act=act)

    def logs(self, act: str, *, hosts=None, lines: int | str | None = None,
             grep: str | None = None, follow: bool = False, source: str = "act",
             on_line: Callable[[str, str], None] | None = None) -> LogsReport:
        """The last ``lines`` lines of ``act``'s logs on each of its hosts (``source``: see
        :data:`~backstage.operations.logs.SOURCES`), only those matching ``grep`` (an extended
        regular expression, applied on the host); ``follow``: then every new line, from all
        hosts at once, until Ctrl-C. Each line goes to ``on_line(host, line)`` as it comes
        (default: none); per host, the lines (none kept when following), secrets redacted."""
        self._act(act)
        lines = whole_number(lines, "--lines", DEFAULT_LOG_LINES)
        grep = not_empty(grep, "--grep")
        options = self._options(hosts)
        options.parallel = max(1, len(select_hosts(self.inventory, options.hosts, act)))
        pty = Pty() if follow else None  # hanging up on a terminal ends `tail -F` on the host

        def on_host(run: HostRun):
            command = plan_logs(self.inventory, run.layout, act, source, lines, grep, follow)
            kept: list[str] = []

            def emit(line: str) -> None:
                line = self.redact(line)
                if on_line:
                    on_line(run.name, line)
                if not follow:
                    kept.append(line)

            split = Lines(emit)
            code = run.stream(command, stdin=None, out=split, err=split, pty=pty,
                              cancelled=options.cancelled)
            split.close()
            if code not in (0, 130):
                raise BackstageError(f"{run.name}: reading the logs failed (exit status {code})")
            return kept

        return LogsReport(self.name, self._on_hosts(options, on_host, act), act=act)

    def env(self, act: str, *, hosts=None) -> EnvReport:
        """``act``'s live environment on each host beside what a deploy would write now: per
        host, ``{"release": live release, "keys": [EnvKey...]}``, secret values masked (they
        never leave the host: keys compare by digest)."""
        self._act(act)
        plain = plain_keys(self.inventory, act)

        def on_host(run: HostRun):
            release = live_release(run.name, run.probe(install=False), act)
            answer = run.helper("environment", "environment",
                                env_spec(run.layout, act, release, plain), install=False)
            desired = act_environment(self.inventory, act, run.layout)
            keys = compare_env(answer["keys"], desired, plain)
            for key in keys:  # what the inventory calls plain may still hold a secret
                key.live, key.inventory = (v if v is None else self.redact(v)
                                           for v in (key.live, key.inventory))
            return {"release": release, "keys": keys}

        return EnvReport(self.name, self._on_hosts(self._options(hosts), on_host, act), act=act)

    def snapshots(self, act: str, *, hosts=None) -> SnapshotsReport:
        """``act``'s database snapshots (taken before migrates), newest first: id, database,
        the release that took it, time, size, the hosts holding a copy."""
        self._act(act)

        def on_host(run: HostRun) -> list[Snapshot]:
            listing = run.run_command("snapshots", snapshots_cmd.list_snapshots(run.layout, act))
            return snapshots_op.parse_listing(run.name, listing)

        found = HostsReport(self.name, self._on_hosts(self._options(hosts), on_host, act))
        return SnapshotsReport(self.name, act, snapshots_op.merge(found.done), found.failure)

    def restore(self, act: str, *, snapshot: str, hosts=None) -> RestoreReport:
        """Put ``act``'s database back as snapshot ``snapshot`` has it: stop the act on its
        hosts (under its lock: nothing serves, nothing writes), restore on the hosts holding
        the snapshot, start the act again (health-checked). Per host, what was done."""
        chosen = snapshots_op.find(act, self.snapshots(act, hosts=hosts).check().snapshots,
                                   snapshot)
        holder, live = new_lock("restore", act), {}

        def stop(run: HostRun) -> list[str]:
            observed = run.probe()
            release = live_release(run.name, observed, act)
            checks.not_locked(run.name, observed, [act_lock(act)])
            run.run_locked([snapshots_op.plan_stop(run.layout, run.host.python, act, release,
                                                   holder)], holder["token"], [act_lock(act)])
            live[run.name] = (release, snapshots_op.run_as(self.inventory, run, observed, act))
            return [f"stopped {act}@{release}"]

        def restore(run: HostRun) -> list[str]:
            release, run_as = live[run.name]
            run.execute(snapshots_op.plan_restore(self.inventory, run.layout, act, release,
                                                  run_as, chosen))
            return [f"restored {chosen.database} from {chosen.id} (taken by {chosen.release})"]

        def start(run: HostRun) -> list[str]:
            release = live[run.name][0]
            run.execute(snapshots_op.plan_start(self.inventory, run.layout, run.host.python, act,
                                                release, holder, {"snapshot": chosen.id}))
            return [f"started {act}@{release} (health-checked)"]

        phases = [self._on_hosts(self._options(hosts), stop, act)]
        if not failures(phases[0]):
            phases.append(self._on_hosts(self._options(chosen.hosts), restore, act))
        phases.append(self._on_hosts(self._options(list(live)), start, act) if live else {})
        return RestoreReport(self.name, snapshots_op.merge_phases(phases), act=act,
                             snapshot=chosen.id)

    # --- the Producer ----------------------------------------------------------------------------

    def maintenance(self, switch: str, act: str, *, message: str | None = None,
                    hosts=None) -> MaintenanceReport:
        """Switch ``act``'s maintenance ``"on"`` (every gig answers 503 with Retry-After and
        the maintenance page, ``message`` on it, through deploys and rollbacks) or ``"off"``;
        no nginx reload. History and ``status`` show it."""
        if switch not in SWITCHES:
            raise UsageError(f"maintenance: say on or off, not {switch!r}")
        self._act(act)
        message = not_empty(message, "--message")
        if switch == "off" and message is not None:
            raise UsageError("maintenance off takes no --message")
        renderer, holder = Renderer(self.inventory), new_lock("maintenance", act, message)

        def on_host(run: HostRun):
            step, gigs = plan_maintenance(self.inventory, run.layout, run.probe(), renderer,
                                          act, switch, holder)
            run.execute(step)
            return {"maintenance": switch, "gigs": gigs}

        report = MaintenanceReport(self.name, self._on_hosts(self._options(hosts), on_host, act),
                                   act=act, switch=switch)
        self._notify("maintenance", act, maintenance=switch, message=message,
                     hosts=list(report.results),
                     outcome="failed" if report.exit_code else f"maintenance {switch}")
        return report

    def remove_act(self, act: str, *, purge_data: bool = False, hosts=None) -> RemoveReport:
        """Take ``act`` off its hosts for good: its gigs (and, with a Producer, their
        records), vassals, releases, sockets, venue (when no other act uses it) and unix user
        go; its media, ``shared/`` and own sqlite files stay unless ``purge_data``. The act
        stays in the inventory: remove it there afterwards."""
        self._act(act)
        records = self._records(self.inventory.gigs_of(act), booked=False)
        changed = self._change_records(records)
        holder = new_lock("remove-act", act)

        def on_host(run: HostRun):
            step = plan_remove(self.inventory, run.name, run.layout, run.probe(), act,
                               purge_data, holder)
            run.run_locked([step], holder["token"], lock_scope(self.inventory, run.name, act))
            return {"removed": act, "purged": purge_data}

        results = self._on_hosts(self._options(hosts), on_host, act)
        return RemoveReport(self.name, results, act=act, purged=purge_data, dns=changed)

    def _records(self, gigs: list[str], booked: bool = True, check: bool = True):
        """The Producer and the plan that makes these gigs' records as wanted (reading the
        zones they are in); None without a Producer or records to keep."""
        inventory = self.inventory
        records = dns.wanted(inventory, gigs, booked) if inventory.producer else {}
        if not records:
            return None
        client, zones = self._zones(records)
        plan = dns.plan_dns(inventory, records, zones)
        return client, plan.check(inventory.producer.api_url) if check else plan

    def _zones(self, records: dict) -> tuple[PowerDNS, dict]:
        """The Producer's client, and the zones these records are in as it has them."""
        inventory = self.inventory
        client = PowerDNS(inventory.producer, inventory.producer.api_key(inventory.path))
        return client, {z: dns.read_zone(inventory, client.rrsets(z))
                        for z in dns.zones_of(inventory, records)}

    def _change_records(self, records) -> list[str]:
        """PATCH each zone whose records differ (one request per zone); the changes made."""
        if records is None:
            return []
        client, plan = records
        for zone, rrsets in plan.patches.items():
            client.patch(zone, rrsets)
        for change in plan.changes:
            self.reporter.info(f"dns  {change.line}")
        return [change.line for change in plan.changes]

    def _certificates(self, gigs: list[str], force: bool = False) -> dict:
        """Per gig, its certificate (full chain, key): the one obtained before, unless it is
        due for renewal (or ``force``), else a new one from the ACME directory."""
        if not gigs:
            return {}
        store = CertificateStore(cache_dir(), self.inventory.acme, self.name)
        now = datetime.datetime.now(datetime.UTC)
        certificates = {}
        for gig in gigs:
            certificate = store.get(gig)
            if force or due(certificate and certificate[0], self.inventory.gigs[gig].domains,
                            self.inventory.acme.renew_days, now):
                certificate = self._issue(gig)
                store.put(gig, *certificate)
            certificates[gig] = certificate
        return certificates

    def _issue(self, gig: str) -> tuple[str, str]:
        """A new certificate for the gig's domains: DNS-01 through the Producer, or HTTP-01
        through the nginx of every host the gig's act plays on."""
        inventory = self.inventory
        if inventory.acme.challenge == "http-01":
            publish = self._http01_answers(inventory.gigs[gig].act)
        else:
            client = PowerDNS(inventory.producer, inventory.producer.api_key(inventory.path))

            def publish(records, remove=False):
                for zone, rrsets in challenge_patches(inventory, records, remove).items():
                    client.patch(zone, rrsets)

        self.reporter.info(f"acme  gig {gig}: ordering a certificate for "
                           f"{', '.join(inventory.gigs[gig].domains)}")
        directory = AcmeDirectory(inventory.acme, cache_dir())
        return directory.issue(gig, list(inventory.gigs[gig].domains), publish,
                               lambda records: publish(records, remove=True))

    def _http01_answers(self, act: str):
        """``publish(answers, remove=False)`` for HTTP-01: the answers written on (or removed
        from) every host of the act, any of which the directory may reach."""
        def publish(answers: dict[str, list[str]], remove: bool = False) -> None:
            self._on_hosts(self._options(), lambda run: run.execute(
                http01_answers(run.layout, answers, remove)), act)
        return publish

    def renew_certs(self, *, force: bool = False, hosts=None) -> HostsReport:
        """Renew the certificates of ``tls = "acme"`` gigs expiring within ``[acme]
        renew_days`` (all of them with ``force``) and install each on its act's hosts
        (``nginx -t``, then reload); per host, the gigs whose certificate changed there."""
        inventory = self.inventory
        if inventory.acme is None:
            raise UsageError(f"{inventory.path}: no [acme]: no certificate to renew")
        store = CertificateStore(cache_dir(), inventory.acme, self.name)
        before = {g: store.get(g) for g in acme_gigs(inventory)}
        certificates = self._certificates(list(before), force)
        renewed = {g: c for g, c in certificates.items() if c != before[g]}
        renderer, holder = Renderer(inventory), new_lock("renew-certs")

        def on_host(run: HostRun):
            observed, changed = run.probe(), []
            for gig in [g for g in renewed if inventory.gigs[g].act in
                        inventory.acts_on(run.name)]:
                step = plan_gig(inventory, run.name, run.layout, observed, renderer, gig, False,
                                holder, renewed)
                if step is not None:
                    run.execute(step)
                    changed.append(gig)
            return changed

        return HostsReport(self.name, self._on_hosts(self._options(hosts), on_host))

    def dns(self, gig: str | None = None) -> DnsReport:
        """Per name and type of the gigs' domains (``gig``, or all): the records wanted, those
        the Producer has, and whether they match. Contacts no host."""
        inventory = self.inventory
        if inventory.producer is None:
            raise UsageError(f"{inventory.path}: no [producer]: Backstage keeps no DNS records")
        if gig is not None:
            self._require_gig(gig)
        records = dns.wanted(inventory, [gig] if gig else list(inventory.gigs))
        _, zones = self._zones(records)
        return DnsReport(self.name, dns.compare(records, zones, inventory))

    def converge(self, act: str, *, hosts=None):
        """Bring every host of ``act`` to one health-checked release after a rollout was cut
        short (see :mod:`backstage.operations.converge`): forward, a RolloutReport (the
        deploy of that release); back, a RollbackReport. Locks whose holder is gone are
        taken over; a live holder's refuse the host."""
        inputs = deploy_inputs(self.inventory, act)  # the workstation's code, for forward
        options = self._options(hosts)
        seen = self._on_hosts(options, lambda run: run.probe(), act)
        if failures(seen):
            raise failures(seen)
        verdict = decide(act, seen, inputs.locks, inputs.bundle.digest)
        self.reporter.info(f"converge: {verdict.why}")
        if verdict.forward:
            return self.deploy(act, hosts=hosts)
        holder = new_lock("converge", act)

        def on_host(run: HostRun):
            observed = run.probe()
            stale = checks.locks_to_take_over(run.name, observed, inputs.locks)
            for name, gone in stale.items():
                self.reporter.info(f"{run.name}  taking over {name}: its holder is gone "
                                   f"({gone.get('by')}): {checks.stale_reason(gone)}")
            target, step = plan_back(self.inventory, run.name, run.layout, observed, act,
                                     verdict.target, holder, stale)
            if step:
                run.run_locked([step], holder["token"], lock_scope(self.inventory, run.name,
                                                                     act))
            return {"release": target, "previous": observed.current_release(act)}

        return RollbackReport(self.name, self._on_hosts(options, on_host, act), act=act)


def dns_lines(records) -> list[str]:
    """What a plan says about DNS: the records it would change, and its conflicts."""
    if records is None:
        return []
    _, plan = records
    return [c.line for c in plan.changes] + [f"refused: {c}" for c in plan.conflicts]
