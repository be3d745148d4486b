"""One host during an operation: its connection, its probe, and the steps run on it."""

import json
import threading
import time
from dataclasses import dataclass, field

from backstage.commands import (
    HELPER_MISSING,
    HOSTSIDE_SOURCE,
    hostside_if_installed,
    hostside_inline,
    install_hostside,
    lock,
)
from backstage.commands.shell import Script, become, failed_step, skipped_steps, step_output
from backstage.engine.report import Reporter
from backstage.errors import BackstageError, ConnectionLost, LockHeld, StepFailed
from backstage.facts.migrations import MIGRATED_MARKER, said_plans
from backstage.facts.observed import Observed, probe_spec
from backstage.model import Layout, Production
from backstage.model.secrets import Redactor
from backstage.operations.checks import lock_is_stale
from backstage.operations.steps import Step
from backstage.transport import SSHTransport, Transport

DETAIL_LINES = 40


@dataclass
class Options:
    """How to run: which hosts, how many at once, host key policy, where to report, and
    whose secrets to redact from what hosts answer."""

    hosts: list[str] | None = None
    parallel: int = 32  # hosts at once; their SSH handshakes are bounded apart (transport.ssh)
    accept_new_host_keys: bool = False
    reporter: Reporter = field(default_factory=Reporter)
    redact: Redactor = field(default_factory=Redactor)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Per host, after a run: remote commands sent and bytes uploaded (for benchmarks, --verbose).
    stats: dict[str, dict[str, int]] = field(default_factory=dict)


class Cancelled(BackstageError):
    """The user pressed Ctrl-C: hosts stop after their current step."""

    exit_code = 130


class HostRun:
    """A host's transport, layout and observations for the length of one operation."""

    def __init__(self, production: Production, name: str, options: Options,
                 transport: Transport | None = None):
        self.production, self.name, self.options = production, name, options
        self.host = production.hosts[name]
        self.layout = Layout.for_host(production.name, self.host)
        self.helper_missing = False  # the host lacks this version's helper (see helper())
        self.migration_plans: list[dict] = []  # what its steps' migrate said they would apply
        self.migrated: list[dict] = []  # and what they applied
        self.transport = transport or SSHTransport(
            name, self.host.address or name, user=self.host.user, port=self.host.port,
            ssh_config=production.ssh.config, known_hosts=production.ssh.known_hosts,
            accept_new_host_keys=options.accept_new_host_keys,
        )

    def probe(self, install: bool = True) -> Observed:
        """One look at the host; ``install=False`` for runs that must write nothing there."""
        spec = probe_spec(self.production, self.name, self.layout)
        return Observed(self.layout, self.helper("probe", "probe", spec, install))

    def helper(self, name: str, verb: str, spec: dict, install: bool = True) -> dict:
        """Run the stage's host helper and parse its JSON answer.

        When this version's helper is not installed yet (a new stage, or a new Backstage), a
        second command installs it from stdin and runs it (``install``), or sends it whole
        in the command line and writes nothing (also when it could not be installed); later
        calls then skip the first attempt.
        """
        python = self.host.python
        if not self.helper_missing:
            result = self._send(name, hostside_if_installed(self.layout, python, verb, spec))
            self.helper_missing = result.exit_code == HELPER_MISSING
        if self.helper_missing and install:
            result = self._send(name, install_hostside(self.layout, python, verb, spec),
                                HOSTSIDE_SOURCE.encode(), "install the host helper")
            # Not installed (a user who may not write the stage, say): look without it, so
            # the checks after the probe can say what is wrong.
            self.helper_missing = not result.ok and result.exit_code != 127
        if self.helper_missing:
            result = self._send(name, hostside_inline(python, verb, spec))
        if result.exit_code == 127:
            missing = "sudo" if self.host.become else python
            raise BackstageError(f"{self.name}: {missing!r} is not on the host's PATH")
        if not result.ok:
            raise StepFailed(self.name, name,
                             self.options.redact(result.stderr or result.stdout))
        try:
            return json.loads(result.stdout)
        except ValueError:  # a shell startup file that prints, say
            first = self.options.redact((result.stdout.strip().splitlines() or [""])[0])[:80]
            raise BackstageError(f"{self.name}: step '{name}': the host helper's answer is not "
                                 f"JSON (does a shell startup file on the host print?): "
                                 f"{first!r}") from None

    def _send(self, name: str, command: str, stdin: bytes | None = None, summary: str = ""):
        return self.timed(name, summary, lambda: self.send(command, stdin=stdin))

    def execute(self, step: Step) -> str:
        """Run one step; raise StepFailed naming the step the script reached."""
        if self.options.cancelled.is_set():
            raise Cancelled(f"{self.name}: interrupted before step '{step.name}'")
        try:  # building the payload (wheels, say) is part of the step
            payload = step.payload() if step.payload else None
        except BackstageError as exc:
            raise StepFailed(self.name, step.name, self.options.redact(str(exc))) from None
        try:
            result = self.timed(step.name, step.summary,
                                lambda: self.send(step.command, stdin=payload))
        except ConnectionLost as exc:  # say which step the host may have left half done
            reason = str(exc).removeprefix(f"{self.name}: ")
            raise ConnectionLost(f"{self.name}: step '{step.name}' cut short: {reason}") from None
        self.migration_plans += said_plans(result.stderr)
        self.migrated += said_plans(result.stderr, MIGRATED_MARKER)
        held = lock.held(result.stderr) if result.exit_code == lock.LOCKED_EXIT else None
        if held:  # taken by another command since the probe: say whose, as the probe would
            name, holder = held
            raise LockHeld(self.name, holder, lock_is_stale(holder), name)
        if not result.ok:
            output = step_output(result.stderr).strip() or result.stdout.strip()
            detail = "\n".join(output.splitlines()[-DETAIL_LINES:])
            raise StepFailed(self.name, failed_step(result.stderr) or step.name,
                             self.options.redact(detail), result.stdout)
        for skipped in skipped_steps(result.stderr):  # "migrate users: skipped (unchanged)"
            self.options.reporter.info(f"{self.name}  {skipped}")
        return result.stdout

    def run_command(self, name: str, command: str) -> str:
        return self.execute(Step(name, "", command))

    def run_locked(self, steps: list[Step], token: str, locks: list[str]) -> None:
        """Run steps whose first takes ``locks``; free them if any step fails or is cut."""
        try:
            for step in steps:
                self.execute(step)
        except BaseException:
            if steps:
                self.free_lock(token, locks)
            raise

    def free_lock(self, token: str, locks: list[str]) -> None:
        """Best effort: a host that cannot be reached keeps the locks, reported as stale later."""
        try:
            self.send(lock.release(Script(), self.layout, locks, token).text())
        except BackstageError:
            pass

    def send(self, command: str, stdin: bytes | None = None):
        """Run a command on the host, through ``sudo`` if the host says so."""
        return self.transport.run(become(command, self.host.become), stdin=stdin)

    def stream(self, command: str, **how) -> int:
        """Run a command with its output streamed (see ``Transport.stream``); its exit status."""
        return self.transport.stream(become(command, self.host.become), **how)

    def timed(self, name, summary, action):
        started = time.monotonic()
        self.options.reporter.started(self.name, name, summary)
        try:
            result = action()
        except BaseException:
            self.options.reporter.ended(self.name, name)
            raise
        self.options.reporter.finished(self.name, name, time.monotonic() - started,
                                       ok=getattr(result, "ok", True))
        return result

    def counters(self) -> dict[str, int]:
        """Remote commands sent and bytes uploaded so far (benchmarks, ``--verbose``)."""
        return {"commands": self.transport.commands, "bytes": self.transport.bytes_sent}

    def close(self):
        self.transport.close()
