"""The tasks: each calls one method of :class:`backstage.Production` and prints its report.

The options every task shares are declared once, by :func:`backstage_task`: ``--inventory``
(a path, or a production name looked up as ``inventories/<name>.toml``; without it,
``$BACKSTAGE_INVENTORY`` or the only file in ``./inventories/``), and for tasks that reach
hosts ``--hosts`` (comma-separated), ``--accept-new-host-keys`` and ``--verbose``.
"""

import functools
import inspect
import json

from fabric import Connection
from invoke import Collection, Exit, task
from rich.console import Console
from rich.table import Table

from backstage.errors import BackstageError, HostsFailed, UsageError
from backstage.model import load_production, release_of_link
from backstage.model.locate import find_inventory
from backstage.production import Production
from backstage.reports import (
    HistoryReport,
    HostsReport,
    PlanReport,
    RollbackReport,
    RolloutReport,
    SessReport,
    StatusReport,
    failure_kind,
)

# (parameter, default, help) of the options every task that reaches hosts takes.
COMMON_OPTIONS = [
    ("inventory", None, "Inventory file, or production name (inventories/<name>.toml)."),
    ("hosts", None, "Comma-separated host names to act on (default: all of the production's)."),
    ("accept_new_host_keys", False, "Trust and record keys of hosts not yet in known_hosts."),
    ("verbose", False, "Show every step, including probes."),
]


def backstage_task(*args, connects: bool = True, **kwargs):
    """``@task`` for a body whose first argument is the loaded :class:`Production`.

    Adds the common options to the task's signature and help (only ``--inventory`` when it
    ``connects`` to no host), refuses ``fab -H``, and turns BackstageError into one line and
    the exit code.
    """
    def decorate(body):
        common = COMMON_OPTIONS if connects else COMMON_OPTIONS[:1]
        name = kwargs.get("name", body.__name__.replace("_", "-"))

        @functools.wraps(body)
        def wrapper(c, *a, **kw):
            options = {name: kw.pop(name, default) for name, default, _ in common}
            try:
                not_fab_hosts(c, name)
                return body(load(**options), *a, **kw)
            except HostsFailed as exc:  # each host's error is printed already
                raise Exit(f"backstage: error: {exc.summary}", code=exc.exit_code) from None
            except BackstageError as exc:
                raise Exit(f"backstage: error: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                raise Exit("backstage: interrupted", code=130) from None

        wrapper.__signature__ = with_options(body, common)
        help_ = {name.replace("_", "-"): text for name, _, text in common}
        return task(wrapper, help={**help_, **kwargs.pop("help", {})}, auto_shortflags=False,
                    **kwargs)
    return decorate(args[0]) if args and callable(args[0]) else decorate


def with_options(body, common) -> inspect.Signature:
    """The body's signature with Invoke's context first and the common options last."""
    params = list(inspect.signature(body).parameters.values())[1:]
    context = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
             for name, default, _ in common]
    return inspect.Signature([context, *params, *added])


def not_fab_hosts(c, name: str) -> None:
    """``fab -H a,b TASK`` runs the task once per host, each run on all of the task's hosts:
    refused before anything is read or contacted, pointing at the task's own ``--hosts``."""
    if isinstance(c, Connection):
        raise UsageError(f"{name}: fab -H would run the task once per host, each time on every "
                         f"host: name them with the task's option instead ({name} --hosts h1,h2)")


def load(inventory=None, hosts=None, accept_new_host_keys=False, verbose=False) -> Production:
    """The production the command line names, printing progress on stderr."""
    return Production(load_production(find_inventory(inventory)), hosts=hosts,
                      accept_new_host_keys=accept_new_host_keys, progress=True, verbose=verbose)


# --- printing reports ------------------------------------------------------------------------

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
def _(report: PlanReport, as_json: bool = False) -> None:
    print(report.text, end="")
    report.check()


@show.register
def _(report: RollbackReport, as_json: bool = False) -> None:
    for host, result in report.done.items():
        print(f"{host}: {report.act} release {result['release']} (was {result['previous']})")
    if report.split():
        print(f"{report.split()}: deploy-act or rollback --to brings them to one")
    report.check()


@show.register
def _(report: SessReport, as_json: bool = False) -> None:
    for host, release in report.done.items():
        print(f"{host}: {report.act}@{release} {report.action} done")
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
        table = Table("time", "host", "event", "act", "release", "previous", "by")
        for e in report.entries:
            table.add_row(e.get("time", ""), e["host"], e.get("event", ""), e.get("act") or "",
                          e.get("release") or e.get("gig") or "", e.get("previous") or "",
                          e.get("by", ""))
        Console().print(table)
    report.check()  # the reachable hosts' entries are shown; the exit code says some are missing


def print_summary(report: RolloutReport) -> None:
    """The end-of-rollout table: one row per host, and why the rollout stopped, if it did."""
    table = Table("host", "result", "before", "after", "seconds", "error",
                  title=f"{report.act} -> {report.release}")
    for host, outcome in report.outcomes.items():
        table.add_row(host, outcome.result, outcome.release_before or "-",
                      outcome.release_after or "-", f"{sum(outcome.durations.values()):.1f}",
                      outcome.error or "")
    console = Console(stderr=True)
    console.print(table)
    if report.migrations:
        console.print(f"migrations: {report.migrations['step']}")
    if report.stopped:
        console.print(f"[red]rollout stopped:[/] {report.stopped}")
    for host, outcome in report.outcomes.items():
        if outcome.result in ("deployed", "repaired", "unchanged"):
            print(f"{host}: {report.act} release {outcome.release_after}")


def print_status(report: StatusReport) -> None:
    table = Table("host", "act", "release", "state", "master", "workers", "uptime", "socket")
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
    for line in broken + report.notes():  # whole lines: the table may be cut to its width
        print(line)


# --- the tasks ---------------------------------------------------------------------------------

ACT = {"act": "Name of the act."}
GIG = {"gig": "Name of the gig."}


@backstage_task(connects=False)
def check(p):
    """Validate an inventory and summarise it; connects to nothing."""
    print(p.summary())


@backstage_task
def setup_stage(p):
    """Make hosts ready: directories, uWSGI Emperor, nginx (idempotent)."""
    show(p.setup_stage())


@backstage_task(help={
    **ACT,
    "serial": "Switch N hosts (or N%) at a time, each batch checked before the next "
              "(default: all at once).",
    "max-fail": "Hosts (N or N%) that may fail or be unreachable before the rollout stops "
                "and reverts (default 0).",
    "no-rollback": "When the rollout stops, leave switched hosts on the new release.",
    "parallel": "Hosts worked on at once while preparing (default 8).",
    "json": "Print one JSON document (schema: docs/rollout.schema.json) on stdout.",
    "dry-run": "Only show what would change, as the plan task does; change nothing.",
})
def deploy_act(p, act, serial=None, max_fail=None, no_rollback=False, parallel=None,
               json_=False, dry_run=False):
    """Deploy an act: prepare on all hosts, migrate once, switch in health-checked batches."""
    show(p.deploy(act, serial=serial, max_fail=max_fail, rollback=not no_rollback,
                  parallel=parallel, dry_run=dry_run), json_)


@backstage_task(help=ACT)
def plan(p, act):
    """Show what deploy-act would change per host, with diffs; takes no lock, changes nothing."""
    show(p.plan(act))


def _sess_task(action, doc):
    @backstage_task(name=action, help=ACT)
    def sess(p, act):
        show(getattr(p, action)(act))
    sess.__doc__ = sess.body.__doc__ = doc
    return sess


start = _sess_task("start", "Start an act's live release (after stop).")
stop = _sess_task("stop", "Stop an act on its hosts; its gigs answer 502 until start.")
restart = _sess_task("restart", "Reload an act's workers gracefully (new pids, same release).")


@backstage_task(help={"act": "Only this act (default: all).", "json": "Print JSON."})
def status(p, act=None, json_=False):
    """Show each act's state per host: release, pids, socket, port, uptime."""
    show(p.status(act), json_)


@backstage_task(help={**ACT, "to": "Release id to go back to (default: the previous good one)."})
def rollback(p, act, to=None):
    """Switch an act back to its previous good release; nothing is rebuilt."""
    show(p.rollback(act, to=to))


@backstage_task(help={"message": "Why it is locked (shown to whoever tries).",
                      "act": "Lock only this act (default: every act of the production)."})
def lock(p, message, act=None):
    """Take an act's lock (default: every act's) by hand; its deploys, rollbacks, starts,
    stops and restarts fail until unlock."""
    show(p.lock(message, act=act))


@backstage_task(help={"act": "Clear only this act's lock and the database locks its holder "
                             "took (default: every lock of the production)."})
def unlock(p, act=None):
    """Clear locks (e.g. left by a killed deploy), recording whose they were."""
    show(p.unlock(act=act))


@backstage_task(help={"limit": "How many entries (default 20).", "json": "Print JSON lines."})
def history(p, limit=None, json_=False):
    """Show the last deploys, rollbacks, starts, stops, locks and unlocks, newest first."""
    show(p.history(limit=limit), json_)


@backstage_task(help=GIG)
def book_gig(p, gig):
    """Install a gig's nginx server block (nginx -t before reload)."""
    show(p.book_gig(gig))


@backstage_task(help=GIG)
def cancel_gig(p, gig):
    """Remove a gig's nginx server block (nginx -t before reload)."""
    show(p.cancel_gig(gig))


from backstage.tasks.new_act import new_act  # the Python API's scaffold task

ns = Collection(check, setup_stage, plan, deploy_act, rollback, start, stop, restart, status,
                book_gig, cancel_gig, lock, unlock, history, new_act)
