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

from rich.console import Console

from backstage.artefacts import wheelhouse
from backstage.artefacts.wheelhouse import cache_dir
from backstage.commands.stage import UWSGI_REQUIREMENT
from backstage.engine.executor import run_on_hosts, select_hosts
from backstage.engine.hosts import HostRun, Options
from backstage.engine.report import Reporter
from backstage.engine.rollout import Rollout, RolloutReport, limits
from backstage.errors import BackstageError, UsageError, known_hint
from backstage.facts.status import read_status, read_texts, status_spec, workers_of
from backstage.model import Production as Inventory
from backstage.model import load_production
from backstage.model.locate import find_inventory
from backstage.operations import certs, checks, dns, history
from backstage.operations.certs import acme_gigs, challenge_patches, due
from backstage.operations.deploy import act_environment, deploy_inputs, plan_deploy, require_act
from backstage.operations.gig import plan_gig
from backstage.operations.lock import lock_scope, new_lock, plan_lock, plan_unlock
from backstage.operations.preview import describe
from backstage.operations.rollback import plan_rollback
from backstage.operations.sess import live_release, plan_sess
from backstage.operations.stage import plan_stage
from backstage.operations.status import status_acts
from backstage.producer.acme import AcmeDirectory, CertificateStore
from backstage.producer.powerdns import PowerDNS
from backstage.render import Renderer
from backstage.reports import (
    DnsReport,
    GigReport,
    HistoryReport,
    HostsReport,
    PlanReport,
    RollbackReport,
    SessReport,
    StatusReport,
)

__all__ = [
    "DnsReport",
    "GigReport",
    "HistoryReport",
    "HostsReport",
    "PlanReport",
    "Production",
    "RollbackReport",
    "RolloutReport",
    "SessReport",
    "StatusReport",
]

DEFAULT_HISTORY = 20


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
        """What ``check`` prints: the file is valid, and what it declares."""
        inv = self.inventory
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

    def setup_stage(self, *, hosts=None) -> HostsReport:
        """Make hosts ready: directories, act users, uWSGI Emperor, nginx (idempotent); per
        host, the summaries of the steps it took."""
        inventory, renderer = self.inventory, Renderer(self.inventory)
        tag = wheelhouse.workstation_tag()

        def uwsgi_wheels(skip):
            return wheelhouse.pack(wheelhouse.for_uwsgi(UWSGI_REQUIREMENT), skip)

        def on_host(run: HostRun):
            users = tuple(dict.fromkeys(inventory.act_user(a) for a in inventory.acts_on(run.name)))
            steps = plan_stage(run.name, run.host.python, run.layout, run.probe(), renderer,
                               uwsgi_wheels, tag, inventory.group, users)
            for step in steps:
                run.execute(step)
            if not steps:
                self.reporter.info(f"{run.name}  stage is ready: nothing to change")
            return [s.summary for s in steps]

        return HostsReport(self.name, self._on_hosts(self._options(hosts), on_host))

    def deploy(self, act: str, *, hosts=None, serial: int | str | None = None,
               max_fail: int | str | None = None, rollback: bool = True,
               parallel: int | None = None, dry_run: bool = False):
        """Roll ``act`` out (``deploy-act``): a RolloutReport. ``serial``/``max_fail``: a
        number of hosts or ``"N%"``. ``dry_run``: check the same arguments and return
        :meth:`plan`'s report instead, changing nothing."""
        options = self._options(hosts, parallel)
        serial, max_fail = not_empty(serial, "--serial"), not_empty(max_fail, "--max-fail")
        limits(serial, max_fail, 1)  # as the rollout will, before anything is built
        if dry_run:
            return self._plan(act, options)
        inputs = deploy_inputs(self.inventory, act)  # built once, before any host is contacted
        names = select_hosts(self.inventory, options.hosts, act)
        records = self._records(self.inventory.gigs_of(act))  # the Producer, read first
        inputs.certificates = self._certificates(acme_gigs(self.inventory, act))
        rollout = Rollout(self.inventory, names, inputs,
                          lambda layout: act_environment(self.inventory, act, layout),
                          options, serial=serial, max_fail=max_fail, rollback=rollback)
        report = rollout.run()
        if report.exit_code == 0:
            self._change_records(records)
        return report

    def plan(self, act: str, *, hosts=None) -> PlanReport:
        """What deploying ``act`` would change on each host, with diffs; takes no lock and
        writes nothing, not even the host helper: a probe, and at most one more command to
        read the files the deploy would replace."""
        return self._plan(act, self._options(hosts))

    def _plan(self, act: str, options: Options) -> PlanReport:
        inputs = deploy_inputs(self.inventory, act)
        renderer, venue = Renderer(self.inventory), self.inventory.acts[act].venue

        def on_host(run: HostRun):
            observed = run.probe({venue: inputs.venue_digest}, install=False)
            plan = plan_deploy(self.inventory, run.name, run.layout, observed, renderer, inputs,
                               act_environment(self.inventory, act, run.layout), dry_run=True)
            paths = plan.changes.replaced
            texts = read_texts(run.helper("read", "probe", {"texts": paths}, install=False)) \
                if paths else {}
            holders = list(observed.held_locks(inputs.locks).values())
            return describe(run.name, act, plan, texts, holders[0] if holders else None)

        results = self._on_hosts(options, on_host, act)
        records = self._records(self.inventory.gigs_of(act), check=False)
        return PlanReport(self.name, results, act=act, dns=dns_lines(records))

    def rollback(self, act: str, *, to: str | None = None, hosts=None) -> RollbackReport:
        """Switch ``act`` back to its previous good release, or to release ``to``; per host,
        ``{"release": now live, "previous": live before}``."""
        to = not_empty(to, "--to")
        self._act(act)
        holder = new_lock("rollback", act)

        def on_host(run: HostRun):
            observed = run.probe()
            target, steps = plan_rollback(self.inventory, run.name, run.layout, observed, act,
                                          to, holder)
            run.run_locked(steps, holder["token"], lock_scope(self.inventory, run.name, act))
            return {"release": target, "previous": observed.current_release(act)}

        return RollbackReport(self.name, self._on_hosts(self._options(hosts), on_host, act),
                              act=act)

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

    # --- the Producer ----------------------------------------------------------------------------

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
        client = PowerDNS(inventory.producer, inventory.producer.api_key())
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
        """A new certificate for the gig's domains, DNS-01 through the Producer."""
        inventory = self.inventory
        client = PowerDNS(inventory.producer, inventory.producer.api_key())

        def publish(records, remove=False):
            for zone, rrsets in challenge_patches(inventory, records, remove).items():
                client.patch(zone, rrsets)

        self.reporter.info(f"acme  gig {gig}: ordering a certificate for "
                           f"{', '.join(inventory.gigs[gig].domains)}")
        directory = AcmeDirectory(inventory.acme, cache_dir())
        return directory.issue(gig, list(inventory.gigs[gig].domains), publish,
                               lambda records: publish(records, remove=True))

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


def dns_lines(records) -> list[str]:
    """What a plan says about DNS: the records it would change, and its conflicts."""
    if records is None:
        return []
    _, plan = records
    return [c.line for c in plan.changes] + [f"refused: {c}" for c in plan.conflicts]
