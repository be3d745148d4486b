"""``remove-act`` on one host: the counterpart of deploying an act for the first time.

Under the act's lock (never while a deploy of it runs): its gigs' server blocks go first
(``nginx -t``, reload), so no request reaches it; its vassals are stopped and their files
removed, and then its releases, env files, sockets, log, maintenance page and locks; its venue
when no other act on the host uses it; its unix user (system layout) when no other act on
the host runs as it. Its media, working folder (``shared/``) and the sqlite files only it
uses, its own ``data/<act>/`` and its database snapshots are kept, unless ``purge``.
"""

from posixpath import join

from backstage.commands import gig as gig_cmd
from backstage.commands import history
from backstage.commands import lock as lock_cmd
from backstage.commands import remove as remove_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.steps import Step

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def vassal_releases(layout: Layout, observed: Observed, act: str) -> list[str]:
    """Every release of the act with a vassal file: enabled, stopped or retired."""
    prefix = f"{act}@"
    return sorted({name[len(prefix):].split(".ini")[0] for name in observed.listing(layout.vassals)
                   if name.startswith(prefix) and ".ini" in name})


def others(production: Production, host: str, act: str) -> list[str]:
    """The other acts of the production on the host."""
    return [a for a in production.acts_on(host) if a != act]


def own_sqlite_files(production: Production, host: str, layout: Layout, act: str) -> list[str]:
    """The sqlite files (with their journals) of the databases no other act on the host uses."""
    used = {d for a in others(production, host, act) for d in production.acts[a].logical_databases}
    files = []
    for name in production.acts[act].logical_databases:
        database = production.databases[name]
        if not database.shared and name not in used:
            path = database.sqlite_path(name, layout.data)
            files += [path + suffix for suffix in SQLITE_COMPANIONS]
    return files


def venue_paths(production: Production, host: str, layout: Layout, observed: Observed,
                act: str) -> list[str]:
    """The act's venue (its folders, link and build lock) when no other act on the host
    uses it."""
    venue = production.acts[act].venue
    if any(production.acts[a].venue == venue for a in others(production, host, act)):
        return []
    folders = [join(layout.venues, name) for name in observed.venue_folders
               if name.rsplit("-", 1)[0] == venue]
    return [*folders, layout.venue_link(venue), layout.venue_lock(venue)]


def made_paths(layout: Layout, act: str, releases: set[str]) -> list[str]:
    """What Backstage made for the act, beside the act's own folders (``releases``: those
    whose sockets may be left, in the user layout's shared ``run/``)."""
    sockets = [p for r in sorted(releases) for p in (layout.socket(act, r),
                                                     layout.stats_socket(act, r))]
    if layout.kind == "system":  # the act's own socket folders
        sockets = [layout.socket_dir(act), layout.stats_dir(act)]
    return [layout.releases(act), layout.env_dir(act), layout.current(act),
            layout.good_list(act), layout.bad_list(act), layout.stable_socket(act), *sockets,
            layout.act_log(act), layout.act_log(act) + ".1", layout.maintenance_page(act),
            layout.maintenance_info(act), layout.retire_lock(act)]


def plan_remove(production: Production, host: str, layout: Layout, observed: Observed,
                act: str, purge: bool, holder: dict) -> Step:
    """The one step that removes ``act`` from the host (see the module's docstring)."""
    locks = [lock_cmd.act_lock(act)]
    checks.not_locked(host, observed, locks)
    python = production.hosts[host].python
    script = lock_cmd.acquire(Script(), layout, locks, holder)
    gigs = [layout.gig_conf(g) for g in production.gigs_of(act) if observed.has(layout.gig_conf(g))]
    gig_cmd.install_gigs(script, layout, {}, gigs, observed.services)
    stopped = vassal_releases(layout, observed, act)
    remove_cmd.stop_vassals(script, layout, python, act, stopped)
    script.step("remove")
    script.remove(*made_paths(layout, act, {*observed.releases(act), *stopped}),
                  *venue_paths(production, host, layout, observed, act))
    # Its data: uploads, working folder, sqlite files, and the snapshots taken before its
    # migrations (the way back to that data).
    kept = [layout.media(act), layout.shared(act), layout.act_data(act),
            layout.act_backups(act), *own_sqlite_files(production, host, layout, act)]
    user = production.act_user(act)
    user_goes = layout.kind == "system" and all(production.act_user(a) != user
                                                 for a in others(production, host, act))
    if purge:
        script.remove(layout.act_dir(act), *kept)
    elif user_goes:
        remove_cmd.give_to_root(script, kept)
    if user_goes:
        remove_cmd.delete_user(script, user)
    history.append(script, layout, {"time": holder["time"], "by": holder["by"], "act": act,
                                    "event": "remove-act", "purge": purge})
    lock_cmd.force_release(script, layout, locks)  # the lock goes with the act
    return Step("remove-act", f"remove {act}", script.text())
