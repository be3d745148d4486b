"""The lease of a rollout's locks: renewed on every host while the rollout runs.

A deploy's lock records its lease (``lock_timeout`` seconds); a lock from another machine
whose lease was not renewed for that long is taken over by the next deploy (see
:func:`backstage.operations.checks.lock_is_stale`). While a rollout runs, a thread renews
the lease on each host it holds locks on, every third of the lease, over the host's own
connection (one more command, beside the rollout's own). A workstation that is killed, loses
its network or sleeps renews nothing: the lease runs out.
"""

import threading
from collections.abc import Callable
from typing import Self

import paramiko

from backstage.commands import lock as lock_cmd
from backstage.commands.shell import Script
from backstage.engine.hosts import HostRun
from backstage.errors import BackstageError


class LeaseKeeper:
    """Renew ``locks`` (taken with ``token``) on the hosts ``runs()`` gives, every ``every``
    seconds, until stopped; use as a context manager around the rollout."""

    def __init__(self, runs: Callable[[], list[HostRun]], locks: list[str], token: str,
                 every: float):
        self.runs, self.locks, self.token, self.every = runs, locks, token, every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="lease", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stopped.wait(self.every):
            for run in self.runs():
                self.renew(run)

    def renew(self, run: HostRun) -> None:
        """Best effort: a host that cannot be reached now is renewed at the next round (and
        whatever the connection raises stays in this thread: the rollout reports its own)."""
        try:
            run.send(lock_cmd.renew(Script(), run.layout, self.locks, self.token).text())
        except (BackstageError, OSError, EOFError, paramiko.SSHException):
            pass
