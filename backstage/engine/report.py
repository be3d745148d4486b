"""Progress lines for people: one line per host and step, on stderr, with rich.

On a terminal, the steps still running (a venue build, an upload) also show below those lines
with their elapsed time, and go when they end. Errors and notes are redacted with the
production's :class:`Redactor` before they are printed.
"""

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from backstage.errors import BackstageError, StepFailed
from backstage.model.secrets import Redactor


class Reporter:
    def __init__(self, console: Console | None = None, verbose: bool = False,
                 redact: Redactor | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.verbose = verbose
        self.redact = redact or Redactor()
        self.lock = threading.Lock()
        self.running = (Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=self.console, transient=True)
                        if self.console.is_terminal else None)
        self.steps: dict[tuple[str, str], TaskID] = {}

    def _print(self, text: str) -> None:
        with self.lock:
            self.console.print(text, soft_wrap=True)

    def started(self, host: str, step: str, summary: str) -> None:
        if summary:
            self._print(f"[bold]{escape(host)}[/]  {escape(step):<8} {escape(summary)}")
        if self.running is not None:
            with self.lock:
                if not self.steps:
                    self.running.start()
                self.steps[host, step] = self.running.add_task(
                    f"[bold]{escape(host)}[/]  {escape(step)}")

    def ended(self, host: str, step: str) -> None:
        """The step is no longer running (finished, or raised): its live line goes."""
        if self.running is not None:
            with self.lock:
                if (task := self.steps.pop((host, step), None)) is not None:
                    self.running.remove_task(task)
                if not self.steps:
                    self.running.stop()

    def finished(self, host: str, step: str, seconds: float, ok: bool) -> None:
        self.ended(host, step)
        mark = "[green]ok[/]" if ok else "[red]failed[/]"
        if self.verbose or step != "probe" or not ok:
            self._print(f"[bold]{escape(host)}[/]  {escape(step):<8} {mark} {seconds:.2f}s")

    def failed(self, host: str, error: BackstageError) -> None:
        self._print(f"[bold]{escape(host)}[/]  [red]error[/] {escape(self.redact(str(error)))}")
        if isinstance(error, StepFailed) and error.detail:
            for line in self.redact(error.detail).splitlines():
                self._print(f"    [dim]{escape(line)}[/]")

    def totals(self, stats: dict[str, dict[str, int]]) -> None:
        if self.verbose:
            for host, counts in stats.items():
                self._print(f"[bold]{escape(host)}[/]  {counts['commands']} remote commands, "
                            f"{counts['bytes'] / 1024:.1f} KiB sent")

    def info(self, text: str) -> None:
        self._print(escape(self.redact(text)))
