"""Run command text on this machine, as the SSH transport would on a remote host."""

import subprocess

from backstage.transport.base import Result, Transport


class LocalTransport(Transport):
    def __init__(self, name: str = "local"):
        super().__init__(name)

    def _run(self, command, stdin, timeout):
        done = subprocess.run(
            ["sh", "-c", command], input=stdin or b"", capture_output=True, timeout=timeout,
            check=False,
        )
        return Result(command, done.returncode, done.stdout.decode("utf-8", "replace"),
                      done.stderr.decode("utf-8", "replace"))
