"""What every transport offers: run one command, with optional bytes on its stdin."""

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

    def close(self) -> None:
        """Release the connection, if any."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
