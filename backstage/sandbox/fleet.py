"""A test fleet: small real servers made of Linux namespaces, reachable only by SSH over loopback.

Each fleet host is

* a network namespace (``ip netns add``) holding nothing but ``lo``: there are no routes, so any
  address other than 127.0.0.0/8 or ::1 fails at once with ENETUNREACH, and no packet ever leaves;
* inside it, ``unshare --mount --uts --pid --fork --mount-proc`` running ``init.sh`` from the host's
  work dir, which sets the hostname, mounts the host's filesystems and then execs
  ``sshd -D -e`` as PID 1 of the host's PID namespace. sshd reaps orphans, and killing it (SIGKILL
  from the root namespace) ends every process of the host.

The host's filesystems (everything else is the real machine's, read through):

=========== ===================================================================================
``/etc``    overlayfs, lower = the real ``/etc``, upper = ``<host>/etc.upper``: ``useradd``, nginx
            config and ``/etc/hostname`` change only this host. Survives ``restart()``.
``/var``    overlayfs the same way (``<host>/var.upper``): nginx logs, ``/var/lib/nginx``.
``/srv``    bind mount of ``<host>/srv``, so it survives ``restart()`` like a disk across a reboot;
            the system layout's ``/srv/backstage/<production>`` lives there.
``/home``   bind mount of ``<host>/home`` (homes of the ``users`` made by ``start()``), for the
            same reason: the users stay in the overlaid ``/etc/passwd`` across a restart.
``/root``   bind mount of ``<host>/root``: root's own home, so the machine's dotfiles (a pyenv
            in ``~/.bashrc``, say) do not leak into hosts and change which ``python3`` they run.
``/run``    tmpfs (lost on restart, like a reboot), holding ``/run/sshd`` and ``/run/fleet-ssh``.
``/tmp``    tmpfs (lost on restart).
=========== ===================================================================================

``/run/fleet-shared`` is a bind of ``<workdir>/shared``, the same directory in every host: the
place for unix sockets of services the hosts share, since hosts share no network.

``/run/fleet-ssh`` is a read-only bind of ``<host>/ssh`` (sshd_config, host key, authorized_keys).
It exists because the fleet's work dir is usually under ``/tmp`` (pytest's ``tmp_path``), which the
host's own ``/tmp`` hides, and because sshd reads ``AuthorizedKeysFile`` as the logging-in user, who
could not traverse pytest's 0700 directories; the bind root is 0755 whatever its parents are. The
client's private key is deliberately not visible inside the hosts.

Overlay notes, checked on Debian 12 / kernel 6.x: an overlay whose lower dir is the very directory
it is mounted on works. The lower layer is the ``/etc`` directory itself, so files bind-mounted over
``/etc/hosts`` or ``/etc/resolv.conf`` (as Docker does) would show their underlying copy inside the
host; nothing needs them here, since a host can reach no name server anyway. The upper dirs must be
on a filesystem overlayfs accepts as upper (ext4, xfs, tmpfs; not overlayfs itself, so inside a
container put the work dir on a volume). Changing the real ``/etc`` while hosts run gives undefined
results per overlayfs documentation; the tests never do.

Users made by ``start(users=...)`` get the password field ``*``: with ``UsePAM no`` sshd refuses
accounts whose password is locked (``!``, useradd's default) even for public-key logins.

Reaching the hosts. The fleet writes, in its work dir, ``id_ed25519`` (client key), ``known_hosts``
(each host's key under its alias: ``h1 ssh-ed25519 AAAA...``) and ``ssh_config`` with, per host::

    Host h1
      User root
      IdentityFile <workdir>/id_ed25519
      IdentitiesOnly yes
      UserKnownHostsFile <workdir>/known_hosts
      GlobalKnownHostsFile /dev/null
      StrictHostKeyChecking yes
      BatchMode yes
      ProxyCommand /usr/sbin/ip netns exec <netns> /usr/bin/socat - TCP:127.0.0.1:22

OpenSSH: ``ssh -F <workdir>/ssh_config h1 true`` (or ``deploy@h1``).

Fabric reads ``User``, ``IdentityFile`` and ``ProxyCommand`` from that file but not the known-hosts
settings, and its default policy silently accepts unknown keys (fabric#2071). Configure it exactly
like this (``Fleet.connection()`` does it)::

    conn = fabric.Connection("h1", config=fabric.Config(runtime_ssh_path=str(fleet.ssh_config)))
    conn.client.load_host_keys(str(fleet.known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())

A wrong key under the alias then raises ``paramiko.BadHostKeyException``, a missing one
``paramiko.SSHException``.

Outliving the process. ``start()`` records each host's netns and PID 1 in ``<workdir>/fleet.json``,
and ``Fleet.attach(workdir)`` reads it back in another process, which can then ``run``, ``http``,
``restart`` or ``stop`` those hosts (``python -m backstage.sandbox`` keeps its demo host this way).
Hosts of a ``Fleet(..., detach=True)`` start in their own session, so neither the starting
process's exit nor its terminal's hangup or Ctrl-C reaches their ``unshare`` (whose
``--kill-child`` would take the host down with it).

Everything needs root (network namespaces, mounts); ``fleet_available()`` says why not otherwise.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import fabric
import paramiko

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = ("ip", "unshare", "nsenter", "socat", "curl", "ssh", "ssh-keygen")
NETNS_DIR = Path("/run/netns")
STATE_FILE = "fleet.json"
SSH_PORT_HEX = "0100007F:0016"  # 127.0.0.1:22 as written in /proc/<pid>/net/tcp
TCP_LISTEN = "0A"

_HOST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")

SSHD_CONFIG = f"""\
ListenAddress 127.0.0.1:22
HostKey /run/fleet-ssh/ssh_host_ed25519_key
AuthorizedKeysFile /run/fleet-ssh/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
PidFile none
LogLevel ERROR
PrintMotd no
PrintLastLog no
Subsystem sftp {SFTP_SERVER}
"""

INIT_SCRIPT = """\
set -eu
H={hostdir}
hostname {name}
{usr}mount -t overlay overlay -o lowerdir={root}/etc,upperdir="$H/etc.upper",workdir="$H/etc.work" /etc
mount -t overlay overlay -o lowerdir={root}/var,upperdir="$H/var.upper",workdir="$H/var.work" /var
mount --bind "$H/srv" /srv
mount --bind "$H/home" /home
mount --bind "$H/root" /root
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/fleet-ssh /run/sshd /run/lock
mount --bind -o ro "$H/ssh" /run/fleet-ssh
mkdir -p /run/fleet-shared
mount --bind {shared} /run/fleet-shared
mount -t tmpfs -o mode=1777 tmpfs /tmp
echo {name} > /etc/hostname
grep -q ' {name}$' /etc/hosts || echo '127.0.1.1 {name}' >> /etc/hosts
for u in {users}; do
  id -u "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --password '*' "$u"
done
exec {sshd} -D -e -f /run/fleet-ssh/sshd_config
"""


class FleetError(RuntimeError):
    """A fleet host could not be started, reached or stopped."""


@dataclass
class FleetHost:
    """One running (or killed: ``pid == 0``) fleet host.

    ``pid`` is the host's PID 1 (its sshd) as seen from the root PID namespace.
    """

    name: str
    netns: str
    pid: int
    workdir: Path

    @property
    def srv(self) -> Path:
        """The real directory behind the host's ``/srv``."""
        return self.workdir / "srv"


def fleet_available() -> str | None:
    """None if a fleet can run here, else the reason it cannot (for ``pytest.skip``)."""
    if os.geteuid() != 0:
        return f"fleet hosts need root (network namespaces, mounts); running as uid {os.geteuid()}"
    for tool in TOOLS:
        if shutil.which(tool, path=HOST_PATH) is None:
            return f"fleet hosts need {tool!r}, not found in {HOST_PATH}"
    if not os.access(SSHD, os.X_OK):
        return f"fleet hosts need the OpenSSH server at {SSHD}"
    return None


class Fleet:
    """Starts, reaches and stops fleet hosts; see the module docstring for what a host is."""

    def __init__(
        self, workdir: Path, prefix: str = "bs", boot_timeout: float = 10.0, detach: bool = False,
        shared: Path | None = None,
    ):
        self.workdir = Path(workdir).resolve()
        if re.search(r"\s", str(self.workdir)):
            raise ValueError(f"fleet work dir must not contain whitespace: {self.workdir}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.netns_prefix = f"{prefix}-{secrets.token_hex(2)}-"
        self.boot_timeout = boot_timeout
        self.detach = detach
        self.state_file = self.workdir / STATE_FILE
        self.identity = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.ssh_config = self.workdir / "ssh_config"
        # Seen as /run/fleet-shared by every host: for unix sockets of services the hosts share
        # (a PostgreSQL server in the root namespace, say), since hosts share no network.
        self.shared = Path(shared) if shared else self.workdir / "shared"
        if not shared:
            self.shared.mkdir(exist_ok=True)
            self.shared.chmod(0o755)
        self._hosts: dict[str, FleetHost] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        if not self.identity.exists():
            _keygen(self.identity, "backstage-fleet")

    @classmethod
    def attach(cls, workdir: Path, boot_timeout: float = 10.0) -> Self:
        """The fleet whose ``start()`` wrote the state file in workdir, seen from any process.

        Hosts no longer running (killed, or the machine rebooted) come back with ``pid == 0``;
        ``stop()`` still cleans up after them. FileNotFoundError if there is no state file.
        """
        state = json.loads((Path(workdir) / STATE_FILE).read_text())
        fleet = cls(workdir, boot_timeout=boot_timeout, detach=state["detach"])
        fleet.netns_prefix = state["netns_prefix"]
        for name, saved in state["hosts"].items():
            pid = saved["pid"] if _runs_in(saved["pid"], saved["netns"]) else 0
            hostdir = fleet.workdir / "hosts" / name
            fleet._hosts[name] = FleetHost(
                name=name, netns=saved["netns"], pid=pid, workdir=hostdir
            )
        return fleet

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, names: Sequence[str], users: Sequence[str] = (),
              userlands: dict[str, Path] | None = None) -> list[FleetHost]:
        """Start one host per name, each with the given unprivileged users; returns them once
        every sshd listens. Hosts boot in parallel.

        ``userlands``: per host, the root filesystem of another Debian release whose ``/usr``
        (programs and libraries: its Python, glibc, sshd, nginx), ``/etc`` and ``/var`` the host
        runs instead of the machine's (see :mod:`backstage.sandbox.userland`).
        """
        _check_names(names, users, self._hosts)
        hosts = [self._prepare(name, users, (userlands or {}).get(name)) for name in names]
        self._write_client_files()
        for host in hosts:
            _add_netns(host.netns)
            self._boot(host)
        deadline = time.monotonic() + self.boot_timeout
        for host in hosts:
            self._wait_ready(host, deadline)
        self._save_state()
        return hosts

    def host(self, name: str) -> FleetHost:
        """The host called ``name``; KeyError if this fleet has none."""
        return self._hosts[name]

    def run(
        self,
        name: str,
        argv: Sequence[str] | str,
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run a command as root inside all of the host's namespaces, without SSH.

        A string is run with ``bash -c``. Output is captured as text.
        """
        host = self.host(name)
        if not host.pid:
            raise FleetError(f"host {name} is down")
        if isinstance(argv, str):
            argv = ["bash", "-c", argv]
        cmd = ["nsenter", "-t", str(host.pid), "-m", "-u", "-n", "-p", "--", *argv]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=_host_env(),
        )

    def http(
        self,
        name: str,
        path: str = "/",
        *,
        port: int = 80,
        host_header: str | None = None,
        timeout: float = 10,
    ) -> tuple[int, str]:
        """GET ``http://127.0.0.1:<port><path>`` from inside the host's network namespace.

        Returns (status, body); status 0 when no HTTP answer came (refused, timed out).
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        netns = self.host(name).netns
        cmd = ["ip", "netns", "exec", netns, "curl", "--silent", "--noproxy", "*"]
        cmd += ["--max-time", str(timeout), "--output", "-", "--write-out", "\n%{http_code}"]
        if host_header:
            cmd += ["--header", f"Host: {host_header}"]
        cmd.append(f"http://127.0.0.1:{port}{path}")
        out = subprocess.run(
            cmd, check=False, capture_output=True, timeout=timeout + 5, env=_host_env()
        ).stdout
        body, _, status = out.decode(errors="replace").rpartition("\n")
        return int(status or 0), body

    def connection(self, name: str, user: str | None = None) -> fabric.Connection:
        """A Fabric connection to the host that refuses any key not in ``known_hosts``.

        Commands get no stdin (``run.in_stream=False``): fleet hosts are driven by programs, and
        Fabric would otherwise read the caller's stdin, which fails under pytest's capture.
        """
        config = fabric.Config(
            runtime_ssh_path=str(self.ssh_config), overrides={"run": {"in_stream": False}}
        )
        conn = fabric.Connection(name, user=user, config=config)
        conn.client.load_host_keys(str(self.known_hosts))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return conn

    def kill(self, name: str) -> None:
        """Power the host off: SIGKILL its PID 1, which ends every process in it.

        Its network namespace and disks (/etc, /var, /srv, /home) stay for ``restart()``.
        """
        self._halt(self.host(name))
        self._save_state()

    def restart(self, name: str) -> FleetHost:
        """Reboot the host: same host key and disks; /run and /tmp start empty."""
        host = self.host(name)
        self._halt(host)
        self._boot(host)
        self._wait_ready(host, time.monotonic() + self.boot_timeout)
        self._save_state()
        return host

    def stop(self) -> None:
        """Kill every host and delete its network namespace. Idempotent; safe after a partial
        start."""
        errors = []
        for host in list(self._hosts.values()):
            try:
                self._halt(host)
                _delete_netns(host.netns)
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append(f"{host.name}: {exc}")
            else:
                del self._hosts[host.name]
        self._save_state()
        if errors:
            raise FleetError("could not stop all fleet hosts: " + "; ".join(errors))

    def _prepare(self, name: str, users: Sequence[str], userland: Path | None = None) -> FleetHost:
        """Create the host's directories, host key, sshd_config and init script."""
        hostdir = self.workdir / "hosts" / name
        for sub in ("etc.upper", "etc.work", "var.upper", "var.work", "srv", "home", "root", "ssh"):
            (hostdir / sub).mkdir(parents=True, exist_ok=True)
            (hostdir / sub).chmod(0o755)
        ssh = hostdir / "ssh"
        if not (ssh / "ssh_host_ed25519_key").exists():  # a reused work dir keeps its host keys
            _keygen(ssh / "ssh_host_ed25519_key", name)
        (ssh / "sshd_config").write_text(SSHD_CONFIG)
        shutil.copyfile(self.identity.with_suffix(".pub"), ssh / "authorized_keys")
        (ssh / "authorized_keys").chmod(0o644)
        (hostdir / "init.sh").write_text(
            INIT_SCRIPT.format(
                hostdir=shlex.quote(str(hostdir)),
                shared=shlex.quote(str(self.shared)),
                name=name,
                sshd=SSHD,
                users=" ".join(users),
                root=shlex.quote(str(userland)) if userland else "",
                usr=f"mount --bind -o ro {shlex.quote(str(userland))}/usr /usr\n" if userland
                else "",
            )
        )
        host = FleetHost(name=name, netns=self.netns_prefix + name, pid=0, workdir=hostdir)
        self._hosts[name] = host
        return host

    def _write_client_files(self) -> None:
        """(Re)write known_hosts and ssh_config for every host of the fleet."""
        ip = shutil.which("ip", path=HOST_PATH)
        socat = shutil.which("socat", path=HOST_PATH)
        known, config = [], []
        for host in self._hosts.values():
            key = (host.workdir / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
            known.append(f"{host.name} {' '.join(key)}\n")
            config.append(
                f"Host {host.name}\n"
                f"  User root\n"
                f"  IdentityFile {self.identity}\n"
                f"  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {self.known_hosts}\n"
                f"  GlobalKnownHostsFile /dev/null\n"
                f"  StrictHostKeyChecking yes\n"
                f"  BatchMode yes\n"
                f"  ProxyCommand {ip} netns exec {host.netns} {socat} - TCP:127.0.0.1:22\n"
            )
        self.known_hosts.write_text("".join(known))
        self.ssh_config.write_text("\n".join(config))

    def _save_state(self) -> None:
        """Record the hosts for ``attach()``; no hosts, no file."""
        if not self._hosts:
            self.state_file.unlink(missing_ok=True)
            return
        hosts = {h.name: {"netns": h.netns, "pid": h.pid} for h in self._hosts.values()}
        state = {"netns_prefix": self.netns_prefix, "detach": self.detach, "hosts": hosts}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _boot(self, host: FleetHost) -> None:
        """Start the host's init in fresh mount/UTS/PID namespaces inside its netns."""
        with open(host.workdir / "boot.log", "wb") as log:
            self._procs[host.name] = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.netns,
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    str(host.workdir / "init.sh"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_host_env(),
                start_new_session=self.detach,
            )

    def _wait_ready(self, host: FleetHost, deadline: float) -> None:
        """Poll until the host's sshd listens on 127.0.0.1:22 inside its netns."""
        proc = self._procs[host.name]
        while True:
            if proc.poll() is not None:
                raise FleetError(
                    f"host {host.name} died while booting (exit {proc.returncode}): "
                    f"{_boot_log(host)}"
                )
            host.pid = host.pid or _child_pid(proc.pid)
            if host.pid and _listening(host.pid):
                return
            if time.monotonic() > deadline:
                raise FleetError(
                    f"host {host.name}: sshd not listening after "
                    f"{self.boot_timeout}s: {_boot_log(host)}"
                )
            time.sleep(0.005)

    def _halt(self, host: FleetHost) -> None:
        """SIGKILL the host's PID 1 and wait until it and all its processes are gone."""
        proc = self._procs.pop(host.name, None)
        if proc is None:
            if host.pid:  # started by another process and attached: not our child to wait for
                _kill_and_wait(host.pid)
                host.pid = 0
            return
        pid = host.pid or _child_pid(proc.pid)
        try:  # unshare --kill-child SIGKILLs the PID 1 if only unshare could be found
            os.kill(pid or proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # unshare returns once its child, the PID 1, is reaped; the kernel reaps every other
        # process of a PID namespace before its PID 1 counts as exited.
        proc.wait(timeout=30)
        host.pid = 0


def _check_names(names: Sequence[str], users: Sequence[str], existing: dict) -> None:
    """Host and user names end up in shell scripts, ssh_config and paths: keep them plain."""
    for name in names:
        if not _HOST_NAME.fullmatch(name):
            raise ValueError(f"bad fleet host name {name!r} (want {_HOST_NAME.pattern})")
        if name in existing or list(names).count(name) > 1:
            raise ValueError(f"fleet host {name!r} given twice")
    for user in users:
        if not _USER_NAME.fullmatch(user) or user == "root":
            raise ValueError(f"bad fleet user name {user!r} (want {_USER_NAME.pattern})")


def _host_env() -> dict[str, str]:
    """A small, predictable environment for commands run for or inside hosts (no proxies)."""
    return {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8"}


def _keygen(path: Path, comment: str) -> None:
    """Write a fresh ed25519 key pair to path and path.pub."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_host_env(),
    )


def _add_netns(netns: str) -> None:
    """Create a network namespace with only ``lo``, up."""
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True, env=_host_env())
    subprocess.run(
        ["ip", "-n", netns, "link", "set", "lo", "up"],
        check=True,
        capture_output=True,
        env=_host_env(),
    )


def _delete_netns(netns: str) -> None:
    """Delete a network namespace if it exists."""
    if (NETNS_DIR / netns).exists():
        subprocess.run(
            ["ip", "netns", "del", netns], check=True, capture_output=True, env=_host_env()
        )


def _child_pid(ppid: int) -> int:
    """The first child of ppid, 0 if none yet (this kernel has no /proc/<pid>/task/*/children)."""
    for pid, stat in _proc_files("stat"):
        if int(stat.rpartition(")")[2].split()[1]) == ppid:
            return pid
    return 0


def _proc_files(name: str):
    """(pid, text of /proc/<pid>/<name>) for each process that is still there when read."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                yield int(entry.name), Path(entry.path, name).read_text()
            except OSError:
                continue


def _runs_in(pid: int, netns: str) -> bool:
    """Whether pid is a live process in the named network namespace (so not a reused pid)."""
    try:
        mine, theirs = os.stat(f"/proc/{pid}/ns/net"), os.stat(NETNS_DIR / netns)
    except OSError:  # gone, a zombie (no namespaces left), or the netns was deleted
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _kill_and_wait(pid: int, timeout: float = 30) -> None:
    """SIGKILL a host's PID 1 that is not our child; wait until it is a zombie or gone.

    A PID namespace's init becomes a zombie only after every other process in it was reaped.
    """
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.005)
    raise FleetError(f"pid {pid} still running {timeout}s after SIGKILL")


def _listening(pid: int) -> bool:
    """Whether something listens on 127.0.0.1:22 in the network namespace of pid."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(f[1] == SSH_PORT_HEX and f[3] == TCP_LISTEN for f in (ln.split() for ln in lines))


def _boot_log(host: FleetHost) -> str:
    """The host's init and sshd output, for error messages."""
    text = (host.workdir / "boot.log").read_text(errors="replace").strip()
    return text or "(no output)"
