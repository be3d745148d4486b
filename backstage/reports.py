"""What the Python API's methods return: per host, a result or the error that stopped the
operation there, with ``exit_code`` (the program's exit code for it), ``as_dict()`` (what
``--json`` prints) and ``check()`` (raise the hosts' failure, if any). A deploy returns
:class:`~backstage.engine.rollout.RolloutReport`.
"""

from dataclasses import dataclass, field

from backstage.engine.executor import failures
from backstage.engine.rollout import RolloutReport
from backstage.errors import BackstageError, HostsFailed, HostUnreachable
from backstage.model import release_of_link
from backstage.operations import checks
from backstage.operations.deploy import describe_split

__all__ = [
    "CommandReport",
    "DnsReport",
    "EnvReport",
    "GigReport",
    "HistoryReport",
    "HostsReport",
    "LogsReport",
    "MaintenanceReport",
    "PlanReport",
    "RemoveReport",
    "RestoreReport",
    "RollbackReport",
    "RolloutReport",
    "SessReport",
    "SnapshotsReport",
    "StatusReport",
]


def lock_note(host: str, act: str, holder: dict) -> str:
    """``h2: storefront locked by ada@ws (pid 42, deploy-act 2026...-abcd1234): its process
    is gone, the next deploy-act takes it over`` (or: held)."""
    intent = " ".join(str(holder[k]) for k in ("command", "release") if holder.get(k))
    about = f"{holder.get('by')} (pid {holder.get('pid')}, {intent})"
    if checks.lock_is_stale(holder):
        gone = "its process is gone" if checks.on_this_machine(holder) else "its lease ran out"
        state = f"{gone}: the next deploy-act takes it over"
    else:
        state = "held (a live process, another machine, or taken by hand)"
    return f"{host}: {act} locked by {about}: {state}"


def maintenance_note(host: str, act: str, details: dict) -> str:
    """``h1: storefront in maintenance since ... (by ada@ws): Upgrading the database``."""
    message = f": {details['message']}" if details.get("message") else ""
    return (f"{host}: {act} in maintenance since {details.get('time', '?')} "
            f"(by {details.get('by', 'unknown')}){message}: every gig answers 503 until "
            f"maintenance off")


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
    dns: list[str] = field(default_factory=list)  # the records the Producer would change
    # host -> per database, the migrations a deploy would apply (facts.migrations.said_plans)
    migrations: dict[str, list[dict]] = field(default_factory=dict)

    def about(self) -> dict:
        return {"act": self.act, "dns": self.dns, "migrations": self.migrations}

    def entry(self, result: object) -> dict:
        return {"plan": result}

    @property
    def text(self) -> str:
        """What the ``plan`` task prints: each host's plan, one line for a host not planned,
        then the DNS records that would change."""
        return "".join(f"{h}: {self.act}: {not_looked_at(h, r)}\n"
                       if isinstance(r, BackstageError) else r for h, r in self.results.items()) \
            + "".join(f"dns: {line}\n" for line in self.dns)


@dataclass
class GigReport(HostsReport):
    """``book-gig``, ``cancel-gig``: per host, whether its server block changed; ``dns``, the
    records the Producer changed."""

    gig: str = ""
    dns: list[str] = field(default_factory=list)

    def about(self) -> dict:
        return {"gig": self.gig, "dns": self.dns}


@dataclass
class DnsReport:
    """``dns``: per name and type, the records wanted, those the Producer has, the state."""

    production: str
    rows: list[dict]
    exit_code: int = 0

    def as_dict(self) -> dict:
        return {"production": self.production, "records": self.rows}

    @property
    def text(self) -> str:
        return "".join(f"{r['name']} {r['type']}  {r['state']}  wanted: "
                       f"{', '.join(r['wanted']) or '(none)'}  actual: "
                       f"{', '.join(r['actual']) or '(none)'}\n" for r in self.rows)


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

    def split(self) -> str | None:
        """A line naming the hosts on each release when the rollback left them on different
        ones (each host goes back to its own previous good release), else None."""
        by_release: dict[str, list[str]] = {}
        for host, result in self.done.items():
            by_release.setdefault(result["release"], []).append(host)
        return describe_split(self.act, by_release) if len(by_release) > 1 else None


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
    # Per host and HTTPS gig: issuer, not_after, days_left, warn (fewer than 14 days left).
    certificates: dict[str, dict[str, dict]] = field(default_factory=dict)
    dns: dict[str, str] = field(default_factory=dict)  # per gig: match, differ, missing

    @property
    def gig_lines(self) -> list[str]:
        """What ``status`` prints under its table: each gig's records, each host's
        certificates, and a warning for those expiring within 14 days."""
        lines = [f"gig {gig}: dns {state}" for gig, state in self.dns.items()]
        for host, gigs in self.certificates.items():
            for gig, cert in gigs.items():
                warn = "  WARNING: expires within 14 days: renew-certs" if cert["warn"] else ""
                lines.append(f"{host}: gig {gig}: certificate from {cert['issuer']}, expires "
                             f"{cert['not_after']} ({cert['days_left']} days){warn}")
        return lines

    def notes(self) -> list[str]:
        """Lines for what no single host shows: an act whose hosts are on different releases
        (a split fleet), who holds an act's lock, with a killed deploy's intent, and the acts
        in maintenance."""
        lines, live = [], {}
        for host, acts in self.done.items():
            for act, info in acts.items():
                live.setdefault(act, {}).setdefault(
                    release_of_link(info["current"]) if info["current"] else "nothing",
                    []).append(host)
                if info.get("lock"):
                    lines.append(lock_note(host, act, info["lock"]))
                if info.get("maintenance") is not None:
                    lines.append(maintenance_note(host, act, info["maintenance"]))
        splits = [describe_split(act, by) for act, by in live.items() if len(by) > 1]
        return [*(f"{line}: run deploy-act to bring every host to one release"
                  for line in splits), *lines]

    def as_dict(self) -> dict:
        """What ``status --json`` prints: per host, per act its state, or the host's error."""
        return {h: {a: error_entry(r) for a in self.shown[h]} if isinstance(r, BackstageError)
                else r for h, r in self.results.items()}


@dataclass
class CommandReport(HostsReport):
    """``manage``, ``exec``: per host, the command's exit status there (its output went to the
    caller's streams as it came)."""

    act: str = ""

    def about(self) -> dict:
        return {"act": self.act}

    def entry(self, result: object) -> dict:
        return {"exit_code": result}

    @property
    def exit_code(self) -> int:
        """The hosts' failure's, else the first non-zero exit status of the command."""
        return super().exit_code or next((c for c in self.done.values() if c), 0)


@dataclass
class LogsReport(HostsReport):
    """``logs``: per host, its log lines (none kept when following)."""

    act: str = ""

    def about(self) -> dict:
        return {"act": self.act}

    def entry(self, result: object) -> dict:
        return {"lines": result}


@dataclass
class EnvReport(HostsReport):
    """``env``: per host, the live release and its keys compared with the inventory's."""

    act: str = ""

    def about(self) -> dict:
        return {"act": self.act}

    def entry(self, result: object) -> dict:
        return {"release": result["release"], "keys": [k.as_dict() for k in result["keys"]]}

    @property
    def differs(self) -> bool:
        """Whether a deploy would change the environment on some host."""
        return any(k.state != "same" for r in self.done.values() for k in r["keys"])

    @property
    def text(self) -> str:
        """What ``env`` prints: per host, each key marked as it compares (``~`` changed,
        ``+`` a deploy would add it, ``-`` it would drop it)."""
        marks = {"same": " ", "changed": "~", "added": "+", "removed": "-"}
        out = []
        for host, result in self.done.items():
            out.append(f"{host}: {self.act}@{result['release']}")
            for k in result["keys"]:
                value = k.live if k.live is not None else k.inventory
                note = {"changed": f"  (inventory: {k.inventory})", "added": "  (not live)",
                        "removed": "  (not in the inventory)"}.get(k.state, "")
                out.append(f"  {marks[k.state]} {k.key}={value}{note}")
        return "".join(f"{line}\n" for line in out)


@dataclass
class MaintenanceReport(HostsReport):
    """``maintenance on|off``: per host, ``{"maintenance": "on" or "off", "gigs": the gig
    files installed first (written before the switch existed, or out of date)}``."""

    act: str = ""
    switch: str = ""

    def about(self) -> dict:
        return {"act": self.act, "maintenance": self.switch}


@dataclass
class RemoveReport(HostsReport):
    """``remove-act``: per host, ``{"removed": act, "purged": whether its data went}``; and
    the DNS records removed (with a Producer)."""

    act: str = ""
    purged: bool = False
    dns: list[str] = field(default_factory=list)

    def about(self) -> dict:
        return {"act": self.act, "purged": self.purged, "dns": self.dns}


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




@dataclass
class SnapshotsReport:
    """``snapshots``: the act's database snapshots across its hosts that could be read,
    newest first (each :class:`~backstage.operations.snapshots.Snapshot`), and the hosts
    that could not."""

    production: str
    act: str
    snapshots: list
    failure: HostsFailed | None = None

    exit_code = HistoryReport.exit_code
    check = HostsReport.check

    def as_dict(self) -> dict:
        errors = self.failure.errors if self.failure else {}
        return {"production": self.production, "act": self.act, "exit_code": self.exit_code,
                "snapshots": [s.as_dict() for s in self.snapshots],
                "errors": {h: error_entry(e) for h, e in errors.items()}}


@dataclass
class RestoreReport(HostsReport):
    """``restore``: per host, what was done there (``stopped``, ``restored``, ``started``)."""

    act: str = ""
    snapshot: str = ""

    def about(self) -> dict:
        return {"act": self.act, "snapshot": self.snapshot}
