"""Errors a user can act on.

Each is printed as one line, without a traceback, and maps to the program's exit code:
2 for usage and inventory errors (nothing was sent to any host), 1 for a failed deploy,
3 when hosts could not be reached.
"""


class BackstageError(Exception):
    """Base of every error Backstage reports to its user as one line."""

    exit_code = 1


class UsageError(BackstageError):
    """A bad argument or option on the command line."""

    exit_code = 2


class InventoryError(BackstageError):
    """The inventory file is missing, unreadable or invalid: ``file: key: reason``."""

    exit_code = 2

    def __init__(self, path, key, reason):
        self.path, self.key, self.reason = str(path), key, reason
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {reason}")


class HostUnreachable(BackstageError):
    """SSH could not connect to a host (refused, timed out, or its key was refused)."""

    exit_code = 3


class ConnectionLost(HostUnreachable):
    """An open SSH connection to a host dropped, possibly in the middle of a command."""


class StepFailed(BackstageError):
    """A remote step exited non-zero. Carries the step name and the tail of its output."""

    def __init__(self, host, step, detail=""):
        from backstage.redact import redact

        self.host, self.step, self.detail = host, step, redact(detail).strip()
        message = f"{host}: step '{step}' failed"
        if self.detail:
            message += ": " + self.detail.splitlines()[-1]
        super().__init__(message)


class LockHeld(BackstageError):
    """Another command holds (or held, if stale) a lock on a host: an act's, or a database's
    (see :mod:`backstage.commands.lock`)."""

    def __init__(self, host, holder: dict, stale: bool, lock: str | None = None):
        self.host, self.holder, self.stale, self.lock = host, holder, stale, lock
        details = ", ".join([*([f"lock={lock}"] if lock else []), *(
            f"{k}={holder[k]}" for k in ("by", "pid", "time", "command", "act", "message")
            if holder.get(k))])
        state = ("STALE (its process is gone; run 'unlock' to clear it)" if stale
                 else "held (wait for it, or run 'unlock' if you are sure it is abandoned)")
        super().__init__(f"{host}: deploy lock {state}: {details}")
