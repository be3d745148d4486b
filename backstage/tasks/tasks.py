"""The tasks. Each parses its arguments, loads the inventory and calls one rollout operation.

Every task takes ``--inventory`` (a path, or a production name looked up as
``inventories/<name>.toml``); without it, ``$BACKSTAGE_INVENTORY`` or the only file in
``./inventories/`` is used. ``--hosts`` narrows to some hosts (comma-separated).
"""

import functools
import inspect
import json
import os
from pathlib import Path

from invoke import Collection, Exit, task
from rich.console import Console
from rich.table import Table

from backstage.errors import BackstageError, UsageError
from backstage.model import load_production, release_of_link
from backstage.rollout import Options, operations
from backstage.rollout.report import Reporter

COMMON_HELP = {
    "inventory": "Inventory file, or production name (inventories/<name>.toml).",
    "hosts": "Comma-separated host names to act on (default: all of the production's).",
    "accept-new-host-keys": "Trust and record keys of hosts not yet in known_hosts.",
    "verbose": "Show every step, including probes.",
}


def find_inventory(value: str | None) -> Path:
    """Resolve ``--inventory``: a path, a production name, $BACKSTAGE_INVENTORY, or the only one."""
    value = value or os.environ.get("BACKSTAGE_INVENTORY")
    if value:
        path = Path(value)
        if path.suffix != ".toml" and not path.exists():
            path = Path("inventories") / f"{value}.toml"
        return path
    found = sorted(Path("inventories").glob("*.toml"))
    if len(found) != 1:
        raise UsageError(
            "--inventory: name an inventory file or production "
            + ("(several in ./inventories/)" if found else "(none found in ./inventories/)")
        )
    return found[0]


def backstage_task(*args, **kwargs):
    """``@task`` with the common options' help, turning BackstageError into a one-line exit."""
    def decorate(body):
        @functools.wraps(body)
        def wrapper(c, *a, **kw):
            try:
                return body(c, *a, **kw)
            except BackstageError as exc:
                raise Exit(f"backstage: error: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                raise Exit("backstage: interrupted", code=130) from None
        params = {p.replace("_", "-") for p in inspect.signature(body).parameters}
        help_ = {k: v for k, v in COMMON_HELP.items() if k in params}
        return task(wrapper, help={**help_, **kwargs.pop("help", {})}, auto_shortflags=False,
                    **kwargs)
    return decorate(args[0]) if args and callable(args[0]) else decorate


def options(hosts, accept_new_host_keys=False, verbose=False) -> Options:
    wanted = [h.strip() for h in hosts.split(",") if h.strip()] if hosts else None
    return Options(hosts=wanted, accept_new_host_keys=accept_new_host_keys,
                   reporter=Reporter(verbose=verbose))


@backstage_task
def check(c, inventory=None):
    """Validate an inventory and summarise it; connects to nothing."""
    production = load_production(find_inventory(inventory))
    print(f"{production.path}: production {production.name!r} is valid: "
          f"{len(production.hosts)} hosts, {len(production.venues)} venues, "
          f"{len(production.acts)} acts, {len(production.gigs)} gigs")


@backstage_task
def setup_stage(c, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """Make hosts ready: directories, uWSGI Emperor, nginx (idempotent)."""
    production = load_production(find_inventory(inventory))
    operations.setup_stage(production, options(hosts, accept_new_host_keys, verbose))


@backstage_task(help={
    "act": "Name of the act to deploy.",
    "serial": "Switch N hosts (or N%) at a time, each batch checked before the next "
              "(default: all at once).",
    "max-fail": "Hosts (N or N%) that may fail or be unreachable before the rollout stops "
                "and reverts (default 0).",
    "no-rollback": "When the rollout stops, leave switched hosts on the new release.",
    "parallel": "Hosts worked on at once while preparing (default 8).",
    "json": "Print one JSON document (schema: docs/rollout.schema.json) on stdout.",
    "dry-run": "Only show what would change, as the plan task does; change nothing.",
})
def deploy_act(c, act, inventory=None, hosts=None, serial=None, max_fail=None,
               no_rollback=False, parallel=8, json_=False, dry_run=False,
               accept_new_host_keys=False, verbose=False):
    """Deploy an act: prepare on all hosts, migrate once, switch in health-checked batches."""
    production = load_production(find_inventory(inventory))
    opts = options(hosts, accept_new_host_keys, verbose)
    opts.parallel = int(parallel)
    if dry_run:
        return print_plan(production, act, opts)
    report = operations.deploy_act(production, act, opts, serial=serial, max_fail=max_fail,
                                   rollback=not no_rollback)
    if json_:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        print_summary(report)
    if report.exit_code:
        raise Exit(code=report.exit_code)


@backstage_task(help={"act": "Name of the act."})
def plan(c, act, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """Show what deploy-act would change per host, with diffs; takes no lock, changes nothing."""
    production = load_production(find_inventory(inventory))
    print_plan(production, act, options(hosts, accept_new_host_keys, verbose))


def print_plan(production, act: str, opts: Options) -> None:
    for text in operations.plan_act(production, act, opts).values():
        print(text, end="")


def print_summary(report) -> None:
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
        if outcome.result in ("deployed", "unchanged"):
            print(f"{host}: {report.act} release {outcome.release_after}")


def _sess_task(action, doc):
    @backstage_task(name=action, help={"act": "Name of the act."})
    def sess(c, act, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
        production = load_production(find_inventory(inventory))
        opts = options(hosts, accept_new_host_keys, verbose)
        for host, release in operations.sess_action(production, act, action, opts).items():
            print(f"{host}: {act}@{release} {action} done")
    sess.__doc__ = doc
    sess.body.__doc__ = doc
    return sess


start = _sess_task("start", "Start an act's live release (after stop).")
stop = _sess_task("stop", "Stop an act on its hosts; its gigs answer 502 until start.")
restart = _sess_task("restart", "Reload an act's workers gracefully (new pids, same release).")


@backstage_task(help={"act": "Only this act (default: all).", "json": "Print JSON."})
def status(c, act=None, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False,
           json_=False):
    """Show each act's state per host: release, pids, socket, port, uptime."""
    production = load_production(find_inventory(inventory))
    results = operations.status(production, act, options(hosts, accept_new_host_keys, verbose))
    if json_:
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    table = Table("host", "act", "release", "state", "master", "workers", "uptime", "socket")
    for host, acts in results.items():
        for act_name, info in acts.items():
            live = release_of_link(info["live"]) if info["live"] else None
            for sess in info["sesses"] or [{}]:
                state = ("running" if sess.get("master") else "stopped") if sess else "absent"
                mark = " (live)" if sess.get("release") == live else ""
                table.add_row(host, act_name, (sess.get("release") or "-") + mark, state,
                              str(sess.get("master") or "-"),
                              " ".join(map(str, sess.get("workers", []))) or "-",
                              f"{sess['uptime']}s" if sess.get("uptime") is not None else "-",
                              sess.get("socket") or "-")
    Console().print(table)


@backstage_task(help={"act": "Name of the act.",
                      "to": "Release id to go back to (default: the previous good one)."})
def rollback(c, act, to=None, inventory=None, hosts=None, accept_new_host_keys=False,
             verbose=False):
    """Switch an act back to its previous good release; nothing is rebuilt."""
    production = load_production(find_inventory(inventory))
    opts = options(hosts, accept_new_host_keys, verbose)
    for host, result in operations.rollback(production, act, to, opts).items():
        print(f"{host}: {act} release {result['release']} (was {result['previous']})")


@backstage_task(help={"message": "Why it is locked (shown to whoever tries).",
                      "act": "Lock only this act (default: every act of the production)."})
def lock(c, message, act=None, inventory=None, hosts=None, accept_new_host_keys=False,
         verbose=False):
    """Take an act's lock (default: every act's) by hand; its deploys, rollbacks, starts,
    stops and restarts fail until unlock."""
    production = load_production(find_inventory(inventory))
    operations.lock(production, message, options(hosts, accept_new_host_keys, verbose), act)


@backstage_task(help={"act": "Clear only this act's lock and the database locks its holder "
                             "took (default: every lock of the production)."})
def unlock(c, act=None, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """Clear locks (e.g. left by a killed deploy), recording whose they were."""
    production = load_production(find_inventory(inventory))
    operations.unlock(production, options(hosts, accept_new_host_keys, verbose), act)


@backstage_task(help={"limit": "How many entries (default 20).", "json": "Print JSON lines."})
def history(c, limit=20, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False,
            json_=False):
    """Show the last deploys, rollbacks, starts, stops, locks and unlocks, newest first."""
    production = load_production(find_inventory(inventory))
    entries = operations.history_lines(production, int(limit),
                                       options(hosts, accept_new_host_keys, verbose))
    if json_:
        for entry in entries:
            print(json.dumps(entry, sort_keys=True))
        return
    table = Table("time", "host", "event", "act", "release", "previous", "by")
    for e in entries:
        table.add_row(e.get("time", ""), e["host"], e.get("event", ""), e.get("act") or "",
                      e.get("release") or e.get("gig") or "", e.get("previous") or "",
                      e.get("by", ""))
    Console().print(table)


@backstage_task(help={"gig": "Name of the gig."})
def book_gig(c, gig, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """Install a gig's nginx server block (nginx -t before reload)."""
    production = load_production(find_inventory(inventory))
    operations.book_gig(production, gig, options(hosts, accept_new_host_keys, verbose))


@backstage_task(help={"gig": "Name of the gig."})
def cancel_gig(c, gig, inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """Remove a gig's nginx server block (nginx -t before reload)."""
    production = load_production(find_inventory(inventory))
    operations.book_gig(production, gig, options(hosts, accept_new_host_keys, verbose),
                        cancel=True)


from backstage.tasks.new_act import new_act  # the Python API's scaffold task

ns = Collection(check, setup_stage, plan, deploy_act, rollback, start, stop, restart, status, book_gig,
                cancel_gig, lock, unlock, history, new_act)
