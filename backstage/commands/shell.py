"""The one place shell text is assembled: a small builder whose every value is quoted.

A :class:`Script` is a list of shell lines sent to a host as one command, so each phase of a
deploy costs one SSH round trip. Callers never format shell text themselves: they pass values
to the builder's methods, which quote each with :func:`shlex.quote`. Lines that announce a step
(``::step NAME`` on stderr) let the caller name the step that failed.
"""

import shlex
from collections.abc import Iterable

STEP_MARKER = "::step "


def q(value) -> str:
    """Quote one value for the shell."""
    return shlex.quote(str(value))


def argv(*words) -> str:
    """A command line from words, each quoted."""
    return " ".join(q(w) for w in words)


class Script:
    """A bash script built line by line; see the module docstring."""

    def __init__(self):
        self.lines = ["set -euo pipefail", "umask 022"]
        self.defined: set[str] = set()

    def text(self) -> str:
        return "bash -c " + q("\n".join(self.lines))

    def __bool__(self):
        return len(self.lines) > 2 + len(self.defined)

    def raw(self, line: str) -> "Script":
        """Append a line built by this module's callers from :func:`q`/:func:`argv` only."""
        self.lines.append(line)
        return self

    def define(self, name: str, value: str) -> str:
        """Set a shell variable once, near the top; return ``"$name"`` to use it."""
        if name not in self.defined:
            self.defined.add(name)
            self.lines.insert(2, f"{name}={q(value)}")
        return f'"${name}"'

    def step(self, name: str) -> "Script":
        return self.raw(f"printf '%s\\n' {q(STEP_MARKER + name)} >&2")

    def run(self, *words) -> "Script":
        return self.raw(argv(*words))

    def mkdirs(self, paths: Iterable[str]) -> "Script":
        paths = list(paths)
        return self.run("mkdir", "-p", *paths) if paths else self

    def write_file(self, path: str, content: str, mode: str = "644") -> "Script":
        """Replace a file atomically: write beside it, then rename over it."""
        tmp = f"{path}.backstage-new"
        self.raw(f"printf '%s' {q(content)} > {q(tmp)}")
        self.run("chmod", mode, tmp)
        return self.run("mv", "-f", tmp, path)

    def receive_file(self, path: str, size: int) -> "Script":
        """Replace a file atomically with the next ``size`` bytes of stdin: a secret (never in
        argv), 0600 from its first byte. ``dd bs=1`` reads no byte past its own."""
        tmp = f"{path}.backstage-new"
        self.raw(f"(umask 077 && dd bs=1 count={int(size)} status=none of={q(tmp)})")
        return self.run("mv", "-f", tmp, path)

    def link(self, target: str, path: str) -> "Script":
        """Point a symlink at a new target atomically (``rename`` over the old link)."""
        tmp = f"{path}.backstage-new"
        self.run("ln", "-sfn", target, tmp)
        return self.run("mv", "-Tf", tmp, path)

    def remove(self, *paths: str) -> "Script":
        return self.run("rm", "-rf", "--", *paths) if paths else self


def failed_step(stderr: str) -> str | None:
    """The last step a script announced before it stopped."""
    steps = [line[len(STEP_MARKER):] for line in stderr.splitlines() if line.startswith(STEP_MARKER)]
    return steps[-1] if steps else None


def skipped_steps(stderr: str) -> list[str]:
    """The steps a script announced as skipped (``<step>: skipped (<why>)``), in order."""
    return [line[len(STEP_MARKER):] for line in stderr.splitlines()
            if line.startswith(STEP_MARKER) and ": skipped (" in line]


def step_output(stderr: str) -> str:
    """What a script wrote to stderr after the last step it announced: the failed step's own
    output, without what the steps before it said (``check --deploy``'s warnings, say)."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(STEP_MARKER)]
    return "\n".join(lines[starts[-1] + 1:] if starts else lines)


def become(command: str, how: str | None) -> str:
    """A command as the host's ``become`` runs it: ``sudo -n`` (no prompt: a missing rule fails
    at once) runs it as root; its stdin, where scripts get their uploads, passes through."""
    return f"sudo -n -- {command}" if how == "sudo" else command
