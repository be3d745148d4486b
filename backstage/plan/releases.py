"""Which release to roll back to, and which releases cleanup deletes (pure functions).

The rules answer two classic complaints about peer tools: a rollback never lands on a release
that failed (capistrano#1885), and cleanup deletes failed releases first and never deletes the
live release, the one before it, or one a vassal still runs (capistrano#1907).
"""

from backstage.errors import BackstageError
from backstage.plan.observed import Observed


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
