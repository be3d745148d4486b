"""The tasks: each calls one method of :class:`backstage.Production` and prints its report.

The options every task shares are declared once, by :func:`backstage_task`: ``--inventory``
(a path, or a production name looked up as ``inventories/<name>.toml``; without it,
``$BACKSTAGE_INVENTORY`` or the only file in ``./inventories/``), and for tasks that reach
hosts ``--hosts`` (comma-separated), ``--accept-new-host-keys`` and ``--verbose``.
"""

import functools
import inspect
import sys

from invoke import Collection, Exit, task

from backstage.errors import BackstageError, HostsFailed, UsageError
from backstage.model.locate import find_inventory

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
    fabric = sys.modules.get("fabric")  # not imported: c cannot be one of its Connections
    if fabric is not None and isinstance(c, fabric.Connection):
        raise UsageError(f"{name}: fab -H would run the task once per host, each time on every "
                         f"host: name them with the task's option instead ({name} --hosts h1,h2)")


def load(inventory=None, hosts=None, accept_new_host_keys=False, verbose=False):
    """The :class:`~backstage.production.Production` the command line names, printing progress
    on stderr (imported here, not at the top: ``backstage --help`` needs none of it)."""
    from backstage.model import load_production
    from backstage.production import Production

    return Production(load_production(find_inventory(inventory)), hosts=hosts,
                      accept_new_host_keys=accept_new_host_keys, progress=True, verbose=verbose)


# --- printing reports ------------------------------------------------------------------------

def show(report, as_json: bool = False) -> None:
    """Print a report as its task does and exit as its task does (:mod:`.reports`)."""
    from backstage.tasks.reports import show as show_report

    show_report(report, as_json)


# --- the tasks ---------------------------------------------------------------------------------

ACT = {"act": "Name of the act."}
GIG = {"gig": "Name of the gig."}


@backstage_task(connects=False)
def check(p):
    """Validate an inventory and summarise it; connects to nothing."""
    print(p.summary())


@backstage_task(help={"dry-run": "Only say what would change (packages to install, too); "
                                  "change nothing."})
def setup_stage(p, dry_run=False):
    """Make hosts ready: packages, directories, uWSGI Emperor, nginx (idempotent)."""
    show(p.setup_stage(dry_run=dry_run))


@backstage_task(positional=["act"], help={
    "act": "Name of the act; several, separated by commas, deploy one after another, each "
           "after the acts it needs.",
    "all": "Deploy every act of the production, each after the acts it needs.",
    "serial": "Switch N hosts (or N%) at a time, each batch checked before the next "
              "(default: all at once).",
    "max-fail": "Hosts (N or N%) that may fail or be unreachable before the rollout stops "
                "and reverts (default 0).",
    "no-rollback": "When the rollout stops, leave switched hosts on the new release.",
    "parallel": "Hosts worked on at once while preparing (default 32).",
    "json": "Print one JSON document (schema: backstage/rollout.schema.json) on stdout.",
    "dry-run": "Only show what would change, as the plan task does; change nothing.",
    "allow-destructive": "Apply migrations with destructive or irreversible operations "
                         "(refused otherwise, before anything is migrated).",
})
def deploy_act(p, act=None, all_=False, serial=None, max_fail=None, no_rollback=False,
               parallel=None, json_=False, dry_run=False, allow_destructive=False):
    """Deploy an act: prepare on all hosts, migrate once, switch in health-checked batches."""
    for name in p.acts_to_deploy(act, all_):  # a failed one stops the rest (show exits)
        show(p.deploy(name, serial=serial, max_fail=max_fail, rollback=not no_rollback,
                      parallel=parallel, dry_run=dry_run, allow_destructive=allow_destructive),
             json_)


@backstage_task(help={**ACT, "json": "Print JSON: each host's plan, and the migrations a "
                                      "deploy would apply, classified."})
def plan(p, act, json_=False):
    """Show what deploy-act would change per host, with diffs; takes no lock, changes nothing."""
    show(p.plan(act), json_)


def _sess_task(action, doc):
    @backstage_task(name=action, help=ACT)
    def sess(p, act):
        show(getattr(p, action)(act))
    sess.__doc__ = sess.body.__doc__ = doc
    return sess


start = _sess_task("start", "Start an act's live release (after stop).")
stop = _sess_task("stop", "Stop an act on its hosts; its gigs answer 502 until start.")
restart = _sess_task("restart", "Reload an act's workers gracefully (new pids, same release).")


@backstage_task(help={"act": "Only this act (default: all); also its first word.",
                      "json": "Print JSON."})
def status(p, act=None, json_=False):
    """Show each act's state per host: release, pids, socket, port, uptime."""
    show(p.status(act), json_)


@backstage_task(help={**ACT, "to": "Release id to go back to (default: the previous good one).",
                      "migrate-back": "Unapply the migrations the release does not know first "
                                      "(refused when one cannot be reversed).",
                      "force": "Roll the code back even onto a schema it does not know."})
def rollback(p, act, to=None, migrate_back=False, force=False):
    """Switch an act back to its previous good release; nothing is rebuilt."""
    show(p.rollback(act, to=to, migrate_back=migrate_back, force=force))


@backstage_task(help={**ACT, "json": "Print JSON (forward: the rollout's report)."})
def converge(p, act, json_=False):
    """Bring every host of an act to one health-checked release after a rollout was cut
    short: forward if its new release passed its checks everywhere it went live, else back."""
    show(p.converge(act), json_)


@backstage_task(help={"message": "Why it is locked (shown to whoever tries).",
                      "act": "Lock only this act (default: every act of the production)."})
def lock(p, message, act=None):
    """Take an act's lock (default: every act's) by hand; its deploys, rollbacks, starts,
    stops and restarts fail until unlock."""
    show(p.lock(message, act=act))


@backstage_task(help={"act": "Clear only this act's lock and the database locks its holder "
                             "took (default: every lock of the production); also its first "
                             "word."})
def unlock(p, act=None):
    """Clear locks (e.g. left by a killed deploy), recording whose they were."""
    show(p.unlock(act=act))


@backstage_task(help={"limit": "How many entries (default 20).", "json": "Print JSON lines."})
def history(p, limit=None, json_=False):
    """Show the last deploys, rollbacks, starts, stops, locks and unlocks, newest first."""
    show(p.history(limit=limit), json_)


@backstage_task(help=GIG)
def book_gig(p, gig):
    """Install a gig's nginx server block (nginx -t before reload); its DNS records follow."""
    show(p.book_gig(gig))


@backstage_task(help=GIG)
def cancel_gig(p, gig):
    """Remove a gig's DNS records, then its nginx server block (nginx -t before reload)."""
    show(p.cancel_gig(gig))


@backstage_task(connects=False, help={"gig": "Only this gig's domains.", "json": "Print JSON."})
def dns(p, gig=None, json_=False):
    """List each gig domain's records: wanted, what the Producer (PowerDNS) has, whether equal."""
    report = p.dns(gig)
    if json_:
        from backstage.tasks.reports import print_json

        print_json(report.as_dict())
    else:
        print(report.text, end="")


@backstage_task(help={"force": "Renew every acme certificate, due or not."})
def renew_certs(p, force=False):
    """Renew acme certificates expiring within [acme] renew_days; install them (nginx -t)."""
    show(p.renew_certs(force=force))


command_words: list[str] = []  # after `--`, set by the backstage program (program.py)
ON_HOSTS = {"all-hosts": "Run on every host of the act, one after the other (default: the "
                         "host that runs its migrations; or name them with --hosts)."}


@backstage_task(help={**ACT, **ON_HOSTS})
def manage(p, act, all_hosts=False):
    """Run a management command in an act's live release: backstage manage ACT -- ARGS..."""
    show(p.manage(act, command_words, all_hosts=all_hosts, stdin=sys.stdin.fileno()))


@backstage_task(name="exec", help={**ACT, **ON_HOSTS})
def exec_(p, act, all_hosts=False):
    """Run a command as an act runs (its user, env, venue): backstage exec ACT -- CMD..."""
    show(p.exec(act, command_words, all_hosts=all_hosts, stdin=sys.stdin.fileno()))


@backstage_task(help={
    **ACT, "lines": "Lines of each host's log to show first (default 50).",
    "grep": "Only lines matching this extended regular expression (filtered on the host).",
    "follow": "Then show new lines from every host as they come, until Ctrl-C.",
    "source": "act (default: requests and the app's stderr), access (nginx's access log of "
              "the act's gigs), nginx (nginx's error log), emperor (uWSGI Emperor's log).",
    "json": "Print one JSON document (not with --follow)."}, aliases=["log"])
def logs(p, act, lines=None, grep=None, follow=False, source="act", json_=False):
    """Show an act's log lines from each of its hosts, prefixed by host; -f follows them."""
    from backstage.production import print_line

    show(p.logs(act, lines=lines, grep=grep, follow=follow, source=source,
                on_line=None if json_ else print_line), json_)


@backstage_task(help={**ACT, "json": "Print one JSON document."})
def env(p, act, json_=False):
    """Show an act's live environment per host (secret values masked) and the keys that
    differ from what a deploy would write now (~ changed, + added, - removed)."""
    show(p.env(act), json_)


@backstage_task(help={"switch": "on or off.", **ACT,
                      "message": "What the maintenance page says (with on).",
                      "json": "Print JSON."})
def maintenance(p, switch, act, message=None, json_=False):
    """Put an act in maintenance (every gig answers 503 with Retry-After and a page, through
    deploys and rollbacks, no nginx reload) or take it out: maintenance on|off ACT."""
    show(p.maintenance(switch, act, message=message), json_)


@backstage_task(help={**ACT, "purge_data": "Also delete its media, shared/ and the sqlite "
                                           "files only it uses (asks first).",
                      "yes": "Do not ask before --purge-data deletes.", "json": "Print JSON."})
def remove_act(p, act, purge_data=False, yes=False, json_=False):
    """Take an act off its hosts: gigs, vassals, releases, sockets, venue (when no other act
    uses it), unix user; its data stays unless --purge-data."""
    if purge_data and not yes:
        confirm_purge(p.name, act)
    show(p.remove_act(act, purge_data=purge_data), json_)


def confirm_purge(production: str, act: str) -> None:
    """Ask on the terminal before data is deleted; without one, --yes is required."""
    if not sys.stdin.isatty():
        raise UsageError("--purge-data deletes the act's data: confirm with --yes "
                         "(stdin is not a terminal)")
    answer = input(f"Delete the media, shared/ and own sqlite files of {act} in {production} "
                   f"on every host? Type the act's name to confirm: ")
    if answer.strip() != act:
        raise UsageError("--purge-data not confirmed: nothing was changed")


@backstage_task(help={**ACT, "json": "Print one JSON document."})
def snapshots(p, act, json_=False):
    """List an act's database snapshots (taken before each migrate), newest first."""
    show(p.snapshots(act), json_)


@backstage_task(help={**ACT, "snapshot": "Id of the snapshot to put back (see snapshots)."})
def restore(p, act, snapshot):
    """Stop an act, put its database back as a snapshot has it, start it again."""
    show(p.restore(act, snapshot=snapshot))


from backstage.tasks.new_act import new_act  # the Python API's scaffold task

ns = Collection(check, setup_stage, plan, deploy_act, rollback, start, stop, restart, status,
                book_gig, cancel_gig, dns, renew_certs, lock, unlock, history, manage, exec_, logs,
                env, maintenance, remove_act, new_act, converge)
ns.add_task(snapshots)
ns.add_task(restore)
