"""Run command text on a remote host over one SSH connection.

Fabric opens the connection: it reads ssh_config (aliases, users, ports, ``ProxyCommand``,
``ProxyJump``, identity files) and authenticates. Commands then run on paramiko channels of
that one connection rather than through ``Connection.run``, because Invoke's stdin relay
decodes bytes as text and naps between small reads, which would corrupt and slow the tarballs
Backstage streams.

Host keys are verified: Fabric's default policy accepts unknown keys silently (fabric#2071),
so it is replaced with a refusal, unless the user opts in to trust-on-first-use, in which case
new keys are saved to the known_hosts file. A changed key is always refused.
"""

import io
import os
import select
import threading
import time
from pathlib import Path

import fabric
import paramiko

from backstage.errors import ConnectionLost, HostUnreachable
from backstage.transport.base import Result, Transport

CHUNK = 256 * 1024
EOF_GRACE = 5.0


class _SaveNewKeys(paramiko.MissingHostKeyPolicy):
    """Trust on first use: accept a host's first key and record it in known_hosts."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self.known_hosts.open("a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class _ProxyCommand(paramiko.ProxyCommand):
    """paramiko's ProxyCommand, except that ``recv`` returns ``b""`` at end of file, as a socket
    does. paramiko's loops forever once the command has exited (the connection dropped, or
    Ctrl-C reached the command too), so the run using the connection would hang."""

    def recv(self, size):
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        if not ready:
            raise TimeoutError()  # what a socket raises (socket.timeout); paramiko retries
        try:
            return os.read(self.process.stdout.fileno(), size)
        except OSError as exc:
            raise paramiko.ProxyCommandFailure(" ".join(self.cmd), exc.strerror) from None


class _Connection(fabric.Connection):
    def open_gateway(self):
        """A ``ProxyCommand`` from ssh_config, as Fabric makes it, but one that ends."""
        if not isinstance(self.gateway, str):
            return super().open_gateway()
        config = paramiko.SSHConfig()
        config.parse(io.StringIO(f"Host {self.host}\n    ProxyCommand {self.gateway}"))
        return _ProxyCommand(config.lookup(self.host)["proxycommand"])


class SSHTransport(Transport):
    def __init__(self, name: str, address: str, user: str | None = None, port: int | None = None,
                 ssh_config: Path | None = None, known_hosts: Path | None = None,
                 accept_new_host_keys: bool = False, connect_timeout: float = 10):
        super().__init__(name)
        overrides = {"load_ssh_configs": True}
        config = fabric.Config(runtime_ssh_path=str(ssh_config) if ssh_config else None,
                               overrides=overrides)
        self.connection = _Connection(
            address, user=user, port=port, config=config, connect_timeout=connect_timeout
        )
        self.known_hosts = known_hosts or self._known_hosts_from_config()
        client = self.connection.client
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(
            _SaveNewKeys(self.known_hosts) if accept_new_host_keys else paramiko.RejectPolicy()
        )

    def _known_hosts_from_config(self) -> Path:
        files = self.connection.ssh_config.get("userknownhostsfile")
        first = files.split()[0] if isinstance(files, str) else (files or [None])[0]
        return Path(first or "~/.ssh/known_hosts").expanduser()

    def open(self) -> None:
        """Connect now, turning every way of failing into one clear HostUnreachable."""
        try:
            self.connection.open()
        except paramiko.BadHostKeyException as exc:
            raise HostUnreachable(
                f"{self.name}: host key CHANGED (got {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}); refusing to connect. If the host was "
                f"rebuilt, remove its old key from {self.known_hosts}"
            ) from None
        except paramiko.SSHException as exc:
            reason = str(exc)
            if "not found in known_hosts" in reason:
                reason = (f"unknown host key (not in {self.known_hosts}); add it, or pass "
                          "--accept-new-host-keys to trust it on first use")
            raise HostUnreachable(f"{self.name}: cannot connect: {reason}") from None
        except (OSError, EOFError) as exc:
            raise HostUnreachable(f"{self.name}: cannot connect: {exc}") from None

    def _run(self, command, stdin, timeout):
        if not self.connection.is_connected:
            self.open()
        try:
            channel = self.connection.transport.open_session()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionLost(f"{self.name}: connection lost: {exc}") from None
        with channel:
            channel.settimeout(timeout)
            channel.exec_command(command)
            sender = threading.Thread(target=self._send, args=(channel, stdin or b""), daemon=True)
            sender.start()
            stdout, stderr = self._receive(channel)
            sender.join()
            code = channel.recv_exit_status()
        if code == -1:
            raise ConnectionLost(f"{self.name}: connection lost while running a command")
        return Result(command, code, stdout, stderr)

    @staticmethod
    def _send(channel, data: bytes):
        try:
            for start in range(0, len(data), CHUNK):
                channel.sendall(data[start:start + CHUNK])
            channel.shutdown_write()
        except OSError:
            pass  # the command exited before reading all of stdin; its exit code tells why

    @staticmethod
    def _receive(channel):
        """Read stdout and stderr to their end: the server's EOF, not the exit status, which
        sshd may send while output the command wrote is still on its way (under load, that
        lost a command's whole output now and then). A process left running with the
        command's output open would hold the EOF back: past ``EOF_GRACE`` seconds after the
        exit status, what has arrived is all there is."""
        out, err = bytearray(), bytearray()
        exited = None
        while True:
            if channel.recv_ready():
                out += channel.recv(CHUNK)
            elif channel.recv_stderr_ready():
                err += channel.recv_stderr(CHUNK)
            elif channel.eof_received or channel.closed:
                break
            elif channel.exit_status_ready():
                exited = exited or time.monotonic()
                if time.monotonic() - exited > EOF_GRACE:
                    break
                time.sleep(0.002)
            else:
                time.sleep(0.002)
        while channel.recv_ready():
            out += channel.recv(CHUNK)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(CHUNK)
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def close(self) -> None:
        self.connection.close()
