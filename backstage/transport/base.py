"""What every transport offers: run one command, with optional bytes on its stdin."""

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Pty:
    """A pseudo-terminal's type and size, for an interactive command."""

    term: str = "xterm"
    columns: int = 80
    rows: int = 24


class Transport:
    """Runs command text on one host. Subclasses implement :meth:`_run`."""

    name: str

    def __init__(self, name: str):
        self.name = name
        self.commands = 0
        self.bytes_sent = 0

    def run(self, command: str, stdin: bytes | None = None, timeout: float | None = None) -> Result:
        """Run one command; ``stdin`` (if any) is sent whole, then closed."""
        self.commands += 1
        self.bytes_sent += len(command.encode()) + len(stdin or b"")
        return self._run(command, stdin, timeout)

    def _run(self, command, stdin, timeout) -> Result:
        raise NotImplementedError

    def stream(self, command: str, stdin: "bytes | int | None", out: Callable[[bytes], None],
               err: Callable[[bytes], None], pty: "Pty | None" = None,
               cancelled: threading.Event | None = None) -> int:
        """Run one command, handing its output to ``out`` and ``err`` as it arrives; its exit
        status. ``stdin``: bytes sent whole, or a file descriptor copied until its end;
        ``pty``: run it on a pseudo-terminal of that size (its stderr then comes on ``out``);
        ``cancelled``: stop waiting (the command is hung up on) once it is set."""
        self.commands += 1
        self.bytes_sent += len(command.encode())
        return self._stream(command, stdin, out, err, pty, cancelled)

    def _stream(self, command, stdin, out, err, pty, cancelled) -> int:
        raise NotImplementedError

    def resize(self, pty: Pty) -> None:
        """Tell a running interactive command its terminal's new size."""

    def close(self) -> None:
        """Release the connection, if any."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
