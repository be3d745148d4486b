"""Run command text on a remote host over one SSH connection.

Fabric opens the connection: it reads ssh_config (aliases, users, ports, ``ProxyCommand``,
``ProxyJump``, identity files) and authenticates. Commands then run on paramiko channels of
that one connection rather than through ``Connection.run``, because Invoke's stdin relay
decodes bytes as text and naps between small reads, which would corrupt and slow the tarballs
Backstage streams.

Host keys are verified: Fabric's default policy accepts unknown keys silently (fabric#2071),
so it is replaced with a refusal, unless the user opts in to trust-on-first-use, in which case
new keys are saved to the known_hosts file. A changed key is always refused. known_hosts is read
with its ``@cert-authority`` and ``@revoked`` lines (:mod:`backstage.transport.known_hosts`).

paramiko logs the traceback of every failed handshake from its transport thread; with no
logging configured, Python would print it on stderr, before Backstage's own one-line error.
"""

import io
import logging
import os
import select
import subprocess
import threading
import time
from pathlib import Path

import fabric
import paramiko

from backstage.errors import ConnectionLost, HostUnreachable
from backstage.transport.base import Result, Transport
from backstage.transport.known_hosts import (
    CERT_SUFFIX,
    HostKeyRefused,
    KnownHosts,
    is_certificate,
)

CHUNK = 256 * 1024
EOF_GRACE = 5.0
# SSH handshakes (connect, key exchange, authentication) in progress at once, in this process.
# sshd's MaxStartups (default 10:30:100) starts dropping new connections when 10 are still
# unauthenticated; every host of a large rollout may go through one sshd (a bastion), so no
# more than 8 are ever pending, leaving room for the user's own sessions. A handshake takes a
# round trip or three, so this bounds the rate of new connections, not the number open.
MAX_HANDSHAKES = 8
HANDSHAKES = threading.BoundedSemaphore(MAX_HANDSHAKES)

logging.getLogger("paramiko").addHandler(logging.NullHandler())


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """For a key that is not among known_hosts' plain keys: refuse a revoked one, accept a host
    certificate a CA trusted for the host signed, else trust on first use if asked (the key
    is recorded in known_hosts), else refuse."""

    def __init__(self, known: KnownHosts, path: Path, principal: str, accept_new: bool):
        self.known, self.path, self.principal, self.accept_new = known, path, principal, accept_new

    def missing_host_key(self, client, hostname, key):
        if self.known.is_revoked(hostname, key):
            raise HostKeyRefused(f"host key REVOKED in {self.path}")
        if is_certificate(key):
            return self.known.check_certificate(hostname, self.principal, key)
        if not self.accept_new:
            offered = ("it offered no certificate, and " if self.known.authorities_for(hostname)
                       else "")
            raise HostKeyRefused(f"unknown host key ({offered}not in {self.path}); add it, or "
                                 "pass --accept-new-host-keys to trust it on first use")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class _CertificateFirst(paramiko.Transport):
    """Asks for a host certificate before a plain key, as OpenSSH does for a host with a trusted
    CA: paramiko offers certificate algorithms last, so servers would send their plain key."""

    @property
    def preferred_keys(self):
        return tuple(sorted(super().preferred_keys, key=lambda k: not k.endswith(CERT_SUFFIX)))


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
    proxy_command: _ProxyCommand | None = None

    def open_gateway(self):
        """A ``ProxyCommand`` from ssh_config, as Fabric makes it, but one that ends."""
        if not isinstance(self.gateway, str):
            return super().open_gateway()
        config = paramiko.SSHConfig()
        config.parse(io.StringIO(f"Host {self.host}\n    ProxyCommand {self.gateway}"))
        self.proxy_command = _ProxyCommand(config.lookup(self.host)["proxycommand"])
        return self.proxy_command

    def proxy_error(self) -> str | None:
        """Why the ProxyCommand ended by itself (the last line of its stderr): the reason a
        connection through it closed before SSH began. None if it runs or paramiko ended it."""
        proxy = self.proxy_command
        if proxy is None:
            return None
        try:
            if proxy.process.wait(timeout=0.5) < 0:  # killed, by paramiko closing it
                return None
        except subprocess.TimeoutExpired:
            return None
        ready, _, _ = select.select([proxy.process.stderr], [], [], 0)
        said = os.read(proxy.process.stderr.fileno(), 65536).decode(errors="replace") \
            if ready else ""
        lines = [line.strip() for line in said.splitlines() if line.strip()]
        return "proxy command: " + (lines[-1] if lines else
                                    f"exited with status {proxy.process.returncode}")


class SSHTransport(Transport):
    def __init__(self, name: str, address: str, user: str | None = None, port: int | None = None,
                 ssh_config: Path | None = None, known_hosts: Path | None = None,
                 accept_new_host_keys: bool = False, connect_timeout: float = 10):
        super().__init__(name)
        self.pty_channel: paramiko.Channel | None = None  # the interactive command's, if any
        overrides = {"load_ssh_configs": True}
        config = fabric.Config(runtime_ssh_path=str(ssh_config) if ssh_config else None,
                               overrides=overrides)
        self.connection = _Connection(
            address, user=user, port=port, config=config, connect_timeout=connect_timeout
        )
        self.known_hosts = known_hosts or self._known_hosts_from_config()
        client = self.connection.client
        self.known = KnownHosts.load(self.known_hosts, client.get_host_keys())
        host, port = self.connection.host, self.connection.port
        self.key_name = host if port == 22 else f"[{host}]:{port}"  # as known_hosts names it
        client.set_missing_host_key_policy(
            _HostKeyPolicy(self.known, self.known_hosts, host, accept_new_host_keys))
        if self.known.authorities_for(self.key_name) and not self.known.plain.lookup(self.key_name):
            self.connection.connect_kwargs["transport_factory"] = _CertificateFirst

    def _known_hosts_from_config(self) -> Path:
        files = self.connection.ssh_config.get("userknownhostsfile")
        first = files.split()[0] if isinstance(files, str) else (files or [None])[0]
        return Path(first or "~/.ssh/known_hosts").expanduser()

    def open(self) -> None:
        """Connect now (at most :data:`MAX_HANDSHAKES` at once), turning every way of failing
        into one clear HostUnreachable."""
        try:
            with HANDSHAKES:
                self.connection.open()
        except HostKeyRefused as exc:
            raise HostUnreachable(f"{self.name}: cannot connect: {exc}") from None
        except paramiko.BadHostKeyException as exc:
            if self.known.is_revoked(self.key_name, exc.key):
                raise HostUnreachable(f"{self.name}: cannot connect: host key REVOKED in "
                                      f"{self.known_hosts}") from None
            raise HostUnreachable(
                f"{self.name}: host key CHANGED (got {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}); refusing to connect. If the host was "
                f"rebuilt, remove its old key from {self.known_hosts}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = self.connection.proxy_error() or str(exc)
            raise HostUnreachable(f"{self.name}: cannot connect: {reason}") from None

    def _channel(self) -> paramiko.Channel:
        if not self.connection.is_connected:
            self.open()
        try:
            return self.connection.transport.open_session()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionLost(f"{self.name}: connection lost: {exc}") from None

    def _run(self, command, stdin, timeout):
        channel = self._channel()
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

    def _stream(self, command, stdin, out, err, pty, cancelled):
        channel = self._channel()
        with channel:
            if pty is not None:
                channel.get_pty(term=pty.term, width=pty.columns, height=pty.rows)
                self.pty_channel = channel
            channel.exec_command(command)
            if isinstance(stdin, int):
                threading.Thread(target=self._copy, args=(channel, stdin, pty is None),
                                 daemon=True).start()
            elif stdin is not None or pty is None:  # a terminal's end of input would hang it up
                threading.Thread(target=self._send, args=(channel, stdin or b""),
                                 daemon=True).start()
            if not self._relay(channel, out, err, cancelled):
                return 130  # cancelled: closing the channel hangs up on the command
            code = channel.recv_exit_status()
        if code == -1:
            raise ConnectionLost(f"{self.name}: connection lost while running a command")
        return code

    @staticmethod
    def _relay(channel, out, err, cancelled) -> bool:
        """Hand output on until the server's EOF (as :meth:`_receive` waits for it); False if
        ``cancelled`` was set first."""
        exited = None
        while not (cancelled is not None and cancelled.is_set()):
            select.select([channel], [], [], 0.1)
            while channel.recv_ready():
                out(channel.recv(CHUNK))
            while channel.recv_stderr_ready():
                err(channel.recv_stderr(CHUNK))
            if channel.eof_received or channel.closed:
                return True
            if channel.exit_status_ready():
                exited = exited or time.monotonic()
                if time.monotonic() - exited > EOF_GRACE:
                    return True
        return False

    @staticmethod
    def _copy(channel, fd: int, send_eof: bool):
        """Copy a file descriptor (the user's stdin) to the command until its end."""
        try:
            while data := os.read(fd, CHUNK):
                channel.sendall(data)
            if send_eof:
                channel.shutdown_write()
        except OSError:
            pass  # the command ended first

    def resize(self, pty) -> None:
        """Tell the command's pseudo-terminal its new size (the user's window changed)."""
        channel = self.pty_channel
        if channel is not None and not channel.closed:
            channel.resize_pty(width=pty.columns, height=pty.rows)

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
