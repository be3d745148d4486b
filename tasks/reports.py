"""How each task prints its report (rich tables, JSON), and the exit code it ends with.

Kept apart from the task definitions so that the ``backstage`` program starts without
importing rich or the deploy stack: :func:`backstage.tasks.tasks.show` imports this module
only once a task has a report to print.
"""

import functools
import json

from invoke import Exit
from rich.console import Console
from rich.table import Table

from backstage.errors import BackstageError
from backstage.facts.migrations import plan_lines
from backstage.model import release_of_link
from backstage.reports import (
    CommandReport,
    EnvReport,
    HistoryReport,
    HostsReport,
    LogsReport,
    MaintenanceReport,
    PlanReport,
    RemoveReport,
    RestoreReport,
    RollbackReport,
    RolloutReport,
    SessReport,
    SnapshotsReport,
    StatusReport,
    failure_kind,
)


def print_json(document) -> None:
    print(json.dumps(document, indent=2, sort_keys=True))


@functools.singledispatch
def show(report: HostsReport, as_json: bool = False) -> None:
    """Print a report as its task does, then exit as its task does: a HostsFailed (the
    hosts' errors were printed as they happened) or the report's exit code."""
    report.check()


@show.register
def _(report: RolloutReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        print_summary(report)
    if report.exit_code:
        raise Exit(code=report.exit_code)


@show.register
def _(report: CommandReport, as_json: bool = False) -> None:
    report.check()
    if report.exit_code:
        raise Exit(code=report.exit_code)


@show.register
def _(report: LogsReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    report.check()


@show.register
def _(report: EnvReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        print(report.text, end="")
    report.check()


@show.register
def _(report: PlanReport, as_json: bool = False) -> None:
    if as_json:  # each host's text, and per host the migrations a deploy would apply
        print_json(report.as_dict())
    else:
        print(report.text, end="")
    report.check()


@show.register
def _(report: RollbackReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
        return report.check()
    for host, result in report.done.items():
        print(f"{host}: {report.act} release {result['release']} (was {result['previous']})")
        if result.get("schema"):
            print(f"{host}: {result['schema']}")
    if report.split():
        print(f"{report.split()}: deploy-act or rollback --to brings them to one")
    report.check()


@show.register
def _(report: SessReport, as_json: bool = False) -> None:
    for host, release in report.done.items():
        print(f"{host}: {report.act}@{release} {report.action} done")
    report.check()


@show.register
def _(report: MaintenanceReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        for host, result in report.done.items():
            installed = f" (installed {', '.join(result['gigs'])} first)" if result["gigs"] else ""
            print(f"{host}: {report.act} maintenance {result['maintenance']}{installed}")
    report.check()


@show.register
def _(report: RemoveReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        kept = "its data purged" if report.purged else "its data kept (media, shared/, sqlite)"
        for host in report.done:
            print(f"{host}: {report.act} removed, {kept}")
    report.check()


@show.register
def _(report: StatusReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        print_status(report)
    report.check()


@show.register
def _(report: HistoryReport, as_json: bool = False) -> None:
    if as_json:
        for entry in report.as_dict()["entries"]:
            print(json.dumps(entry, sort_keys=True))
    else:
        table = id_table("time", "host", "event", "act", "release", "previous", "by")
        for e in report.entries:
            table.add_row(e.get("time", ""), e["host"], e.get("event", ""), e.get("act") or "",
                          e.get("release") or e.get("gig") or "", e.get("previous") or "",
                          e.get("by", ""))
        Console().print(table)
    report.check()  # the reachable hosts' entries are shown; the exit code says some are missing


def print_summary(report: RolloutReport) -> None:
    """The end-of-rollout table: one row per host, and why the rollout stopped, if it did."""
    table = id_table("host", "result", "before", "after", "seconds", "error",
                     title=summary_title(report))
    for host, outcome in report.outcomes.items():
        table.add_row(host, outcome.result, outcome.release_before or "-",
                      outcome.release_after or "-", f"{sum(outcome.durations.values()):.1f}",
                      outcome.error or "")
    console = Console(stderr=True)
    console.print(table)
    if report.migrations:
        console.print(f"migrations: {report.migrations['step']}")
    print_bakes(console, report)
    for host, plans in report.migration_plans.items():
        console.print("\n".join(f"{host}: {line}" for line in plan_lines(plans)),
                      markup=False)
    if report.stopped:
        console.print(f"[red]rollout stopped:[/] {report.stopped}")
    if report.schema:
        console.print(f"[red]schema:[/] {report.schema}")
    for host, outcome in report.outcomes.items():
        if outcome.result in ("deployed", "repaired", "unchanged"):
            print(f"{host}: {report.act} release {outcome.release_after}")


def print_bakes(console: Console, report: RolloutReport) -> None:
    """Each baked host's counts, and each batch's when it had several hosts."""
    for number, (batch, total) in enumerate(zip(report.batches, report.bakes()), 1):
        for host in batch:
            if report.outcomes[host].bake:
                console.print(f"{host}  bake: {bake_counts(report.outcomes[host].bake)}")
        if total and len(batch) > 1:
            console.print(f"batch {number} ({', '.join(batch)})  bake: {bake_counts(total)}")


def bake_counts(bake: dict) -> str:
    """``3 of 412 requests failed since the switch; 0 of 398 before it: passed``."""
    before = bake["before"]
    return (f"{bake['errors']} of {bake['requests']} requests failed since the switch; "
            f"{before['errors']} of {before['requests']} before it: "
            f"{'passed' if bake['ok'] else 'failed'}")


def id_table(*columns: str, title: str | None = None) -> Table:
    """A table that never cuts a value (Rich's default ends it with "…"), whatever the width
    (80 columns in a pipe): a value too long for its column wraps, a release id too."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def summary_title(report: RolloutReport) -> str:
    """``act -> release``; when no host changed, the live release (the new id was never
    made on any host)."""
    outcomes = list(report.outcomes.values())
    live = {o.release_after for o in outcomes}
    if outcomes and all(o.result == "unchanged" for o in outcomes):
        return f"{report.act}: unchanged, " + (
            f"{live.pop()} is live" if len(live) == 1 else "the releases below are live")
    return f"{report.act} -> {report.release}"


def print_status(report: StatusReport) -> None:
    table = id_table("host", "act", "release", "state", "master", "workers", "uptime", "socket")
    broken = []
    for host, acts in report.results.items():
        if isinstance(acts, BackstageError):  # one row; the error itself went to stderr
            table.add_row(host, "-", "-", failure_kind(acts), "-", "-", "-", "-")
            continue
        for act_name, info in acts.items():
            live = release_of_link(info["current"]) if info["current"] else None
            if info["broken"]:
                broken.append(f"{host}: {act_name}: broken: {info['broken']}")
            for sess in info["sesses"] or [{}]:
                state = ("running" if sess.get("master") else "stopped") if sess else "absent"
                if info["broken"] and sess.get("release") == live:
                    state = "broken"
                mark = " (live)" if sess.get("release") == live else ""
                table.add_row(host, act_name, (sess.get("release") or "-") + mark, state,
                              str(sess.get("master") or "-"),
                              " ".join(map(str, sess.get("workers", []))) or "-",
                              f"{sess['uptime']}s" if sess.get("uptime") is not None else "-",
                              sess.get("socket") or "-")
    Console().print(table)
    for line in [*broken, *report.notes(), *report.gig_lines]:  # whole lines, not cut
        print(line)


@show.register
def _(report: SnapshotsReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        table = id_table("id", "database", "release", "time", "size", "hosts")
        for s in report.snapshots:
            table.add_row(s.id, s.database, s.release, s.time, f"{s.size:,} B", ", ".join(s.hosts))
        Console().print(table)
    report.check()


@show.register
def _(report: RestoreReport, as_json: bool = False) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        for host, done in report.done.items():
            print(f"{host}: {'; '.join(done)}")
    report.check()
