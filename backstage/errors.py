"""Errors a user can act on.

Each is printed as one line, without a traceback, and maps to the program's exit code:
2 for usage and inventory errors (nothing was sent to any host), 1 for a failed deploy,
3 when hosts could not be reached.
"""

import difflib
import re


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
    """A remote step exited non-zero. Carries the step name and the tail of its output
    (whoever raises it redacts the production's secrets from that output first)."""

    def __init__(self, host, step, detail="", stdout=""):
        self.host, self.step, self.detail = host, step, detail.strip()
        self.stdout = stdout  # what the command printed before it failed (a bake's counts)
        message = f"{host}: step '{step}' failed"
        if self.detail:
            message += ": " + error_line(self.detail)
        super().__init__(message)


class HostsFailed(BackstageError):
    """An operation failed on some of its hosts; ``errors`` holds each host's error.

    Each was reported when it happened (see ``Reporter.failed``), so the program ends with
    :attr:`summary`, which counts and names the hosts rather than repeating their errors.
    The exit code is the hosts' when they agree (3: all unreachable), else 1.
    """

    def __init__(self, errors: dict[str, BackstageError], total: int):
        self.errors, self.total = errors, total
        codes = {e.exit_code for e in errors.values()}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        super().__init__("; ".join(str(e) for e in errors.values()))

    @property
    def summary(self) -> str:
        what = {3: "unreachable", 130: "interrupted"}.get(self.exit_code, "failed")
        return f"{len(self.errors)} of {self.total} hosts {what}: {', '.join(self.errors)}"


class ProducerError(BackstageError):
    """The Producer (PowerDNS) or the ACME directory refused, failed or could not be reached;
    or a record it holds was not made by Backstage. Nothing on any host was changed for it."""


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


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped word, or ``""``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def known_hint(word: str, known) -> str:
    """What to say after "unknown x 'word'": the closest known name, else all of them."""
    return did_you_mean(word, known) or f" (known: {', '.join(sorted(known)) or 'none declared'})"


# Lines that carry the error in the output of what steps run: Django's CommandError and its
# "Unknown command", pip's and uv's errors, nginx -t, sudo, and the kernel's answers.
_ERROR_LINE = re.compile(
    r"^\s*(CommandError: |Unknown command: |ERROR: |error: |× |sudo: )"
    r"|\[(emerg|alert|crit)\]|No space left on device|Permission denied|Read-only file system"
)
_TRACEBACK = "Traceback (most recent call last):"


def error_line(output: str) -> str:
    """The line of a failed command's output that says what went wrong.

    The last of: the exception line of each Python traceback, the first error Django's system
    checks list under ``ERRORS:``, and lines in the form of known tools' errors. Without any,
    the last line that is not in a block of ``WARNINGS:`` (Django's ``check --deploy``).
    """
    lines = output.splitlines()
    found = [i for i, line in enumerate(lines) if _ERROR_LINE.search(line)]
    for start, line in enumerate(lines):
        if line.strip() == _TRACEBACK:
            found.append(_next_line(lines, start, unindented=True))
        elif line.strip() == "ERRORS:":
            found.append(_next_line(lines, start))
    found = [i for i in found if i is not None]
    if found:
        return lines[max(found)].strip()
    kept = _outside_warnings(lines)
    return next((line.strip() for line in reversed(kept) if line.strip()), "")


def _next_line(lines: list[str], start: int, unindented: bool = False) -> int | None:
    """The index of the first non-blank line after ``start`` (with no indent, if asked)."""
    return next((i for i in range(start + 1, len(lines)) if lines[i].strip()
                 and not (unindented and lines[i][0].isspace())), None)


def _outside_warnings(lines: list[str]) -> list[str]:
    """Lines not in a ``WARNINGS:`` block (which ends at a blank line)."""
    kept, in_warnings = [], False
    for line in lines:
        if line.strip() == "WARNINGS:":
            in_warnings = True
        elif not line.strip():
            in_warnings = False
        if not in_warnings:
            kept.append(line)
    return kept
