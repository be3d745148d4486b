"""Progress lines for people: one line per host and step, on stderr, with rich.

Errors and notes are redacted with the production's :class:`Redactor` before they are printed.
"""

import threading

from rich.console import Console
from rich.markup import escape

from backstage.errors import BackstageError, StepFailed
from backstage.model.secrets import Redactor


class Reporter:
    def __init__(self, console: Console | None = None, verbose: bool = False,
                 redact: Redactor | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.verbose = verbose
        self.redact = redact or Redactor()
        self.lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self.lock:
            self.console.print(text, soft_wrap=True)

    def started(self, host: str, step: str, summary: str) -> None:
        if summary:
            self._print(f"[bold]{escape(host)}[/]  {escape(step):<8} {escape(summary)}")

    def finished(self, host: str, step: str, seconds: float, ok: bool) -> None:
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
