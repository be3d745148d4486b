"""The one executor over hosts: which hosts, at most ``--parallel`` at once, Ctrl-C, and per
host its result or the error that stopped it there (as Fabric's ``GroupResult``)."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from backstage.engine.hosts import HostRun, Options
from backstage.errors import BackstageError, HostsFailed, UsageError, known_hint
from backstage.model import Production


def select_hosts(production: Production, wanted: list[str] | None,
                 act: str | None = None) -> list[str]:
    """The hosts to act on: all (or those ``act`` plays on), narrowed by ``--hosts``.

    ``wanted`` None means no ``--hosts``. An empty list is an error, never "every host" (a
    script passing an empty variable must not reach the whole fleet), and so is a selection
    that leaves no host.
    """
    candidates = production.hosts_of(act) if act else list(production.hosts)
    if wanted is None:
        return candidates
    if not wanted:
        raise UsageError("--hosts: empty; name hosts (comma-separated), or leave --hosts out "
                         "for all of them")
    for name in wanted:
        if name not in production.hosts:
            raise UsageError(f"--hosts: unknown host {name!r} in {production.path}"
                             + known_hint(name, production.hosts))
    selected = [h for h in candidates if h in wanted]
    if not selected:
        raise UsageError(f"--hosts: {', '.join(wanted)}: act {act!r} plays on none of them "
                         f"(it plays on {', '.join(candidates)})")
    return selected


def in_parallel(names: list[str], options: Options,
                action: Callable[[str], object]) -> dict[str, object]:
    """Run ``action(host)`` on each host, at most ``options.parallel`` at once; per host, its
    result or the BackstageError it raised (reported as it happened).

    On Ctrl-C, hosts stop after their current step (``options.cancelled``), the hosts not
    started yet never start, and KeyboardInterrupt is raised once all have stopped.
    """
    if not names:
        return {}

    def attempt(name):
        try:
            return action(name)
        except BackstageError as exc:
            options.reporter.failed(name, exc)
            return exc

    pool = ThreadPoolExecutor(max_workers=max(1, min(options.parallel, len(names))))
    futures = [pool.submit(attempt, name) for name in names]
    try:
        results = {name: future.result() for name, future in zip(names, futures)}
    except KeyboardInterrupt:
        options.cancelled.set()
        options.reporter.info("interrupted: stopping after the current step on each host")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def run_on_hosts(production: Production, names: list[str], options: Options,
                 operation: Callable[[HostRun], object]) -> dict[str, object]:
    """Open each host, run ``operation`` on it, close it; per host, its result or its error
    (see :func:`in_parallel`), and the commands and bytes sent in ``options.stats``."""
    def on_host(name):
        run = HostRun(production, name, options)
        try:
            return operation(run)
        finally:
            options.stats[name] = run.counters()
            run.close()

    results = in_parallel(names, options, on_host)
    options.reporter.totals(options.stats)
    return results


def failures(results: dict[str, object]) -> HostsFailed | None:
    """The hosts of :func:`run_on_hosts` results that failed, as one error (or None)."""
    errors = {n: r for n, r in results.items() if isinstance(r, BackstageError)}
    return HostsFailed(errors, len(results)) if errors else None
