"""Which release to roll back to, and which releases cleanup deletes (pure functions).

The rules answer two classic complaints about peer tools: a rollback never lands on a release
that failed (capistrano#1885), and cleanup deletes failed releases first and never deletes the
live release, the one before it, or one a vassal still runs (capistrano#1907).
"""

from backstage.errors import BackstageError
from backstage.facts.observed import Observed


def previous_good(observed: Observed, act: str, current: str | None) -> str | None:
    """The newest release older than ``current`` that took traffic before and did not fail."""
    candidates = rollback_candidates(observed, act, current)
    older = [r for r in candidates if current is None or r < current]
    return older[-1] if older else None


def rollback_candidates(observed: Observed, act: str, current: str | None) -> list[str]:
    """Releases a rollback may pick: good once, never bad, still on disk with their vassal file."""
    good, bad = set(observed.good_releases(act)), observed.bad_releases(act)
    # A release retired a moment ago may still have its vassal enabled (retiring runs a second
    # after the switch, in the background): reviving it then is a no-op rename.
    on_disk = set(observed.releases(act))
    revivable = observed.retired(act) | set(observed.vassal_releases(act))
    return sorted(r for r in good - bad if r in on_disk and r in revivable and r != current)


def rollback_target(host: str, observed: Observed, act: str, wanted: str | None) -> str:
    current = observed.current_release(act)
    if wanted is None:
        target = previous_good(observed, act, current)
        if target is None:
            raise BackstageError(f"{host}: {act} has no previous good release to roll back to")
        return target
    if wanted in observed.bad_releases(act):
        raise BackstageError(f"{host}: release {wanted} of {act} failed its deploy; "
                             "rollback never goes to a bad release")
    if wanted == current:
        raise BackstageError(f"{host}: release {wanted} of {act} is already live")
    if wanted not in rollback_candidates(observed, act, current):
        raise BackstageError(f"{host}: release {wanted} of {act} cannot be rolled back to "
                             "(not on the host, never live, or its vassal file is gone)")
    return wanted


def releases_to_delete(observed: Observed, act: str, keep: int, current: str,
                       previous: str | None) -> list[str]:
    """Everything but the newest ``keep`` good releases, the live one, the previous good one
    and any release with a vassal file (running or stopped)."""
    good, bad = set(observed.good_releases(act)) | {current}, observed.bad_releases(act)
    releases = sorted(set(observed.releases(act)) | {current})
    kept = [r for r in releases if r in good and r not in bad][-keep:]
    protected = {current, previous, *observed.vassal_releases(act), *kept}
    return [r for r in releases if r not in protected]


def release_lists(observed: Observed, act: str, kept: set[str]) -> tuple[list[str], list[str]]:
    """``good-releases`` and ``bad-releases`` after cleanup: the releases still on the host,
    each once (rollback only ever picks one that is there)."""
    return (sorted(set(observed.good_releases(act)) & kept),
            sorted(observed.bad_releases(act) & kept))


def leftovers(observed: Observed, act: str, kept: set[str]) -> list[str]:
    """What killed commands and gone releases leave behind: half-made releases and this act's
    half-made trees (``.incoming-*``), env files (and their temporary copies) and stopped or retired vassal
    files of releases not on the host any more. An enabled vassal file is retired first."""
    layout = observed.layout
    found = [f"{layout.releases(act)}/{name}" for name in observed.listing(layout.releases(act))
             if name.startswith(".incoming-")]
    # Trees in the making are named .incoming-<digest>-<act>: another act's may be under way.
    found += [f"{layout.trees}/{name}" for name in observed.listing(layout.trees)
              if name.startswith(".incoming-")
              and name.removeprefix(".incoming-").partition("-")[2] == act]
    for path in observed.env_files(act):
        release = path.rsplit("/env-", 1)[1]
        if release.endswith(".backstage-new") or release not in kept:
            found.append(path)
    prefix = f"{act}@"
    for name in observed.listing(layout.vassals):
        release, _, state = name.removeprefix(prefix).partition(".ini")
        if name.startswith(prefix) and state in (".retired", ".stopped") and release not in kept:
            found.append(f"{layout.vassals}/{name}")
    return found


def venues_to_delete(observed: Observed, keep: set[str], removed: set[str]) -> list[str]:
    """Venue folders cleanup removes: half-built ones and those no vassal file names once
    ``removed`` (vassal file names) are gone, but never a linked one or one in ``keep`` (the
    deploy's own). Per venue, when only one folder is left (the live one), the newest other
    complete one stays too: the venue before it, for a rollback or a way back."""
    folders = observed.venue_folders

    def needed(name: str) -> bool:
        info = folders[name]
        return info["linked"] or name in keep or bool(set(info["used_by"]) - removed)

    by_venue: dict[str, list[str]] = {}
    for name in folders:
        by_venue.setdefault(name.rsplit("-", 1)[0], []).append(name)
    doomed = []
    for names in by_venue.values():
        spare = sorted((folders[n]["completed"], n) for n in names
                       if folders[n]["complete"] and not needed(n))
        previous = {spare[-1][1]} if spare and sum(map(needed, names)) <= 1 else set()
        doomed += [n for n in names if not needed(n) and n not in previous]
    return sorted(doomed)
