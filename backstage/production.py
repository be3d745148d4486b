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

import os
from dataclasses import dataclass, field

from rich.console import Console

from backstage.errors import BackstageError, HostsFailed, HostUnreachable, UsageError
from backstage.model import Production as Inventory
from backstage.model import load_production
from backstage.model.inventory import check_modules
from backstage.model.locate import find_inventory
from backstage.rollout import operations
from backstage.rollout.deploy import RolloutReport, limits
from backstage.rollout.hosts import Options, failures
from backstage.rollout.report import Reporter

__all__ = [
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


# --- reports ---------------------------------------------------------------------------------

def error_entry(error: BackstageError) -> dict:
    """A host's error in ``as_dict()``: its one line, and whether the host was unreachable."""
    return {"error": str(error), "unreachable": isinstance(error, HostUnreachable)}


@dataclass
class HostsReport:
    """Per host, what an operation returned there, or the error that stopped it there."""

    production: str
    results: dict[str, object]

    @property
    def done(self) -> dict[str, object]:
        """The hosts where the operation succeeded, with their results."""
        return {h: r for h, r in self.results.items() if not isinstance(r, BackstageError)}

    @property
    def errors(self) -> dict[str, BackstageError]:
        return {h: r for h, r in self.results.items() if isinstance(r, BackstageError)}

    @property
    def failure(self) -> HostsFailed | None:
        """The hosts that failed, as one error (its ``summary`` counts and names them)."""
        return failures(self.results)

    @property
    def exit_code(self) -> int:
        """0 done everywhere; 3 hosts unreachable; 1 failed (130 interrupted)."""
        return self.failure.exit_code if self.failure else 0

    def check(self):
        """This report, or raise :attr:`failure`."""
        if self.failure:
            raise self.failure
        return self

    def entry(self, result: object) -> object:
        """A host's result in ``as_dict()``."""
        return result

    def as_dict(self) -> dict:
        return {"production": self.production, "exit_code": self.exit_code, **self.about(),
                "hosts": {h: error_entry(r) if isinstance(r, BackstageError) else self.entry(r)
                          for h, r in self.results.items()}}

    def about(self) -> dict:
        """What the report is about, in ``as_dict()`` (the act, say)."""
        return {}


@dataclass
class PlanReport(HostsReport):
    """``plan``: per host, the text saying what a deploy would change (with diffs)."""

    act: str = ""

    def about(self) -> dict:
        return {"act": self.act}

    def entry(self, result: object) -> dict:
        return {"plan": result}

    @property
    def text(self) -> str:
        """What the ``plan`` task prints: each host's plan, one line for a host not planned."""
        return "".join(f"{h}: {self.act}: {not_looked_at(h, r)}\n"
                       if isinstance(r, BackstageError) else r for h, r in self.results.items())


def not_looked_at(host: str, error: BackstageError) -> str:
    """Why a host could not be looked at, in one line that does not name the host again."""
    return f"{failure_kind(error)}: {str(error).removeprefix(f'{host}: ')}"


def failure_kind(error: BackstageError) -> str:
    return "unreachable" if isinstance(error, HostUnreachable) else "failed"


@dataclass
class RollbackReport(HostsReport):
    """``rollback``: per host, ``{"release": now live, "previous": live before}``."""

    act: str = ""

    def about(self) -> dict:
        return {"act": self.act}


@dataclass
class SessReport(HostsReport):
    """``start``, ``stop``, ``restart``: per host, the live release acted on."""

    act: str = ""
    action: str = ""

    def about(self) -> dict:
        return {"act": self.act, "action": self.action}

    def entry(self, result: object) -> dict:
        return {"release": result}


@dataclass
class StatusReport(HostsReport):
    """``status``: per host and act, releases with a vassal, state, pids, uptime, socket."""

    act: str | None = None
    shown: dict[str, list[str]] = field(default_factory=dict)  # per host, the acts looked at

    def as_dict(self) -> dict:
        """What ``status --json`` prints: per host, per act its state, or the host's error."""
        return {h: {a: error_entry(r) for a in self.shown[h]} if isinstance(r, BackstageError)
                else r for h, r in self.results.items()}


@dataclass
class HistoryReport:
    """``history``: the last entries across the hosts that could be read, newest first, and
    the hosts that could not."""

    production: str
    entries: list[dict]
    failure: HostsFailed | None = None

    @property
    def exit_code(self) -> int:
        return self.failure.exit_code if self.failure else 0

    check = HostsReport.check

    def as_dict(self) -> dict:
        """``entries`` is what ``history --json`` prints, one JSON line each."""
        errors = self.failure.errors if self.failure else {}
        return {"production": self.production, "exit_code": self.exit_code,
                "entries": self.entries, "errors": {h: error_entry(e) for h, e in errors.items()}}


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

    # --- the tasks -----------------------------------------------------------------------------

    def setup_stage(self, *, hosts=None) -> HostsReport:
        """Make hosts ready: directories, act users, uWSGI Emperor, nginx (idempotent); per
        host, the summaries of the steps it took."""
        results = operations.setup_stage(self.inventory, self._options(hosts))
        return HostsReport(self.name, results)

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
        return operations.deploy_act(self.inventory, act, options, serial=serial,
                                     max_fail=max_fail, rollback=rollback)

    def acts_to_deploy(self, acts: str | list[str] | None = None, every: bool = False
                       ) -> list[str]:
        """The acts a deploy of several rolls out, in order: ``acts`` (a list, or names
        separated by commas) or ``every`` act, each after the acts it ``needs``."""
        if isinstance(acts, str):
            acts = [a.strip() for a in acts.split(",") if a.strip()]
        if bool(acts) == every:
            raise UsageError("name the acts to deploy, or --all (not both)")
        for act in acts or []:
            operations.require_act(self.inventory, act)
        return self.inventory.deploy_order(list(self.inventory.acts) if every else acts)

    def plan(self, act: str, *, hosts=None) -> PlanReport:
        """What deploying ``act`` would change on each host; takes no lock, writes nothing."""
        return self._plan(act, self._options(hosts))

    def _plan(self, act: str, options: Options) -> PlanReport:
        return PlanReport(self.name, operations.plan_act(self.inventory, act, options), act=act)

    def rollback(self, act: str, *, to: str | None = None, hosts=None) -> RollbackReport:
        """Switch ``act`` back to its previous good release, or to release ``to``."""
        results = operations.rollback(self.inventory, act, not_empty(to, "--to"),
                                      self._options(hosts))
        return RollbackReport(self.name, results, act=act)

    def _sess(self, action: str, act: str, hosts) -> SessReport:
        results = operations.sess_action(self.inventory, act, action, self._options(hosts))
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

    def status(self, act: str | None = None, *, hosts=None) -> StatusReport:
        """Per host and act (``act``, or all): releases with a vassal, state, pids, socket."""
        results = operations.status(self.inventory, act, self._options(hosts))
        shown = {h: operations.status_acts(self.inventory, h, act) for h in results}
        return StatusReport(self.name, results, act=act, shown=shown)

    def history(self, *, limit: int = DEFAULT_HISTORY, hosts=None) -> HistoryReport:
        """The last ``limit`` deploys, rollbacks, starts, stops, locks... newest first."""
        limit = whole_number(limit, "--limit", DEFAULT_HISTORY)
        entries, failed = operations.history_lines(self.inventory, limit, self._options(hosts))
        return HistoryReport(self.name, entries, failed)

    def lock(self, message: str, *, act: str | None = None, hosts=None) -> HostsReport:
        """Hold an act's lock (``act``), or every act's, by hand: its deploys, rollbacks,
        starts, stops and restarts are refused until unlock."""
        return HostsReport(self.name, operations.lock(self.inventory, message,
                                                      self._options(hosts), act))

    def unlock(self, *, act: str | None = None, hosts=None) -> HostsReport:
        """Clear locks, whoever holds them: the act's (and the database locks its holder took
        with it), or every lock; per host, whose they were (or None)."""
        return HostsReport(self.name, operations.unlock(self.inventory, self._options(hosts),
                                                        act))

    def book_gig(self, gig: str, *, hosts=None) -> HostsReport:
        """Install a gig's nginx server block (``nginx -t`` first); per host, whether it
        changed."""
        return HostsReport(self.name, operations.book_gig(self.inventory, gig,
                                                          self._options(hosts)))

    def cancel_gig(self, gig: str, *, hosts=None) -> HostsReport:
        """Remove a gig's nginx server block; per host, whether it changed."""
        return HostsReport(self.name, operations.book_gig(self.inventory, gig,
                                                          self._options(hosts), cancel=True))
