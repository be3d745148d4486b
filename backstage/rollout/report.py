"""Progress lines for people: one line per host and step, on stderr, with rich."""

import threading

from rich.console import Console
from rich.markup import escape

from backstage.errors import BackstageError, StepFailed
from backstage.redact import redact


class Reporter:
    def __init__(self, console: Console | None = None, verbose: bool = False):
        self.console = console or Console(stderr=True, highlight=False)
        self.verbose = verbose
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
        self._print(f"[bold]{escape(host)}[/]  [red]error[/] {escape(redact(str(error)))}")
        if isinstance(error, StepFailed) and error.detail:
            for line in redact(error.detail).splitlines():
                self._print(f"    [dim]{escape(line)}[/]")

    def totals(self, stats: dict[str, dict[str, int]]) -> None:
        if self.verbose:
            for host, counts in stats.items():
                self._print(f"[bold]{escape(host)}[/]  {counts['commands']} remote commands, "
                            f"{counts['bytes'] / 1024:.1f} KiB sent")

    def info(self, text: str) -> None:
        self._print(escape(redact(text)))
