"""One host during a run, and running an operation on many hosts at once."""

import getpass
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from backstage.errors import (
    BackstageError,
    ConnectionLost,
    HostsFailed,
    LockHeld,
    StepFailed,
    UsageError,
    known_hint,
)
from backstage.model import Layout, Production
from backstage.model.secrets import Redactor
from backstage.plan.checks import lock_is_stale
from backstage.plan.observed import Observed, probe_spec
from backstage.plan.steps import Step
from backstage.rollout.report import Reporter
from backstage.transport import SSHTransport, Transport
from backstage.util import utc_now

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


def whoami() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def new_lock(command: str, act: str | None = None, message: str | None = None) -> dict:
    """What a lock records about its holder (the token lets only the holder free it)."""
    return {"by": whoami(), "host": socket.gethostname(), "pid": os.getpid(), "time": utc_now(),
            "command": command, "act": act, "message": message, "token": secrets.token_hex(8)}


class HostRun:
    """A host's transport, layout and observations for the length of one operation."""

    def __init__(self, production: Production, name: str, options: Options,
                 transport: Transport | None = None):
        self.production, self.name, self.options = production, name, options
        self.host = production.hosts[name]
        self.layout = Layout.for_host(production.name, self.host)
        self.helper_missing = False  # the host lacks this version's helper (see helper())
        self.transport = transport or SSHTransport(
            name, self.host.address or name, user=self.host.user, port=self.host.port,
            ssh_config=production.ssh.config, known_hosts=production.ssh.known_hosts,
            accept_new_host_keys=options.accept_new_host_keys,
        )

    def probe(self, venue_digests: dict[str, str] | None = None, install: bool = True,
              wheels: list[str] = ()) -> Observed:
        """One look at the host; ``install=False`` for runs that must write nothing there."""
        spec = probe_spec(self.production, self.name, self.layout, venue_digests or {}, wheels)
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
        held = lock.held(result.stderr) if result.exit_code == lock.LOCKED_EXIT else None
        if held:  # taken by another command since the probe: say whose, as the probe would
            name, holder = held
            raise LockHeld(self.name, holder, lock_is_stale(holder), name)
        if not result.ok:
            output = step_output(result.stderr).strip() or result.stdout.strip()
            detail = "\n".join(output.splitlines()[-DETAIL_LINES:])
            raise StepFailed(self.name, failed_step(result.stderr) or step.name,
                             self.options.redact(detail))
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

    def timed(self, name, summary, action):
        started = time.monotonic()
        self.options.reporter.started(self.name, name, summary)
        result = action()
        self.options.reporter.finished(self.name, name, time.monotonic() - started,
                                       ok=getattr(result, "ok", True))
        return result

    def close(self):
        self.transport.close()


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


def run_on_hosts(production: Production, names: list[str], options: Options,
                 operation: Callable[[HostRun], object]) -> dict[str, object]:
    """Run ``operation`` on each host in parallel; per host, its result or the error it raised
    (reported as it happened)."""
    def attempt(name):
        run = HostRun(production, name, options)
        try:
            return operation(run)
        except BackstageError as exc:
            options.reporter.failed(name, exc)
            return exc
        finally:
            options.stats[name] = {"commands": run.transport.commands,
                                   "bytes": run.transport.bytes_sent}
            run.close()

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
    options.reporter.totals(options.stats)
    return results


def failures(results: dict[str, object]) -> HostsFailed | None:
    """The hosts of :func:`run_on_hosts` results that failed, as one error (or None)."""
    errors = {n: r for n, r in results.items() if isinstance(r, BackstageError)}
    return HostsFailed(errors, len(results)) if errors else None
