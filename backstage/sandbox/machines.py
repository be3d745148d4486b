"""Fleet hosts booted with systemd as PID 1: fresh Debian servers in a loopback-only network.

A :class:`SystemdFleet` host is ``systemd-nspawn --boot`` of an :class:`~backstage.sandbox.images.
Image` (a ``debootstrap --variant=minbase`` root filesystem with systemd, dbus, the OpenSSH server
and python3), joined to a network namespace holding only ``lo``, as namespace fleet hosts are.
systemd starts ``ssh.service`` (and whatever the host gets enabled later: nginx, the Emperor), so
a host can be shut down and booted again and comes back as a real server would.

Files of a host, in its work dir:

============ ==================================================================================
``upper``    overlayfs upper layer over the image: everything the host changes (/etc, /var,
             /usr, /home...) lives here, so it survives ``restart()``; the image stays as built.
``srv``      bind-mounted as ``/srv``, as on namespace hosts.
``ssh``      read-only ``/run/fleet-ssh``: host key and authorized keys, named by a drop-in
             ``/etc/ssh/sshd_config.d/fleet.conf``.
============ ==================================================================================

The image's local apt repository is bind-mounted read-only at ``/var/lib/fleet-apt``; it is not
an apt source until :meth:`SystemdFleet.add_apt_source` makes it one (a fresh host has none).

How nspawn runs here (a Debian 12 machine whose PID 1 is not systemd, cgroups in hybrid mode):
``--register=no --keep-unit`` (no machined and no system bus to ask for a scope; without them
nspawn stops at "Failed to open system bus"). Both Debian 12 (systemd 252) and Debian 13
(systemd 257) boot in hybrid cgroup mode without any setting; systemd 257 logs
"System is tainted: unmerged-bin:cgroupsv1" and runs. nspawn mounts ``/proc/sys`` read-only
when it is given a network namespace rather than making one (``--private-network``), so a host
cannot change ``net.core.somaxconn`` (its namespace's default, 4096, is above what stages need);
a bind of ``/proc/sys/net`` is made read-only too.

``restart()`` shuts the host down cleanly (SIGTERM to nspawn, which makes the container's
systemd power off) and boots it again; ``kill()`` does the same (a host that does not stop within
30 s gets its PID 1 SIGKILLed).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from backstage.sandbox.fleet import (
    HOST_PATH,
    NETNS_DIR,
    SSHD_CONFIG,
    Fleet,
    FleetError,
    FleetHost,
    _boot_log,
    _host_env,
    _keygen,
    _listening,
    _proc_files,
    _runs_in,
)
from backstage.sandbox.images import Image

APT_MOUNT = "/var/lib/fleet-apt"
APT_SOURCE = f"deb [trusted=yes] file:{APT_MOUNT} ./\n"
# The namespace hosts' sshd settings, as a drop-in read before Debian's own sshd_config (which
# defines the sftp subsystem: a second definition would be an error).
SSHD_DROP_IN = "".join(line for line in SSHD_CONFIG.splitlines(keepends=True)
                       if not line.startswith("Subsystem "))
BOOT_SCRIPT = """\
set -eu
H={hostdir}
mount -t overlay overlay -o lowerdir={rootfs},upperdir="$H/upper",workdir="$H/work" "$H/root"
exec systemd-nspawn --quiet --register=no --keep-unit --boot --console=read-only \\
  --directory="$H/root" --machine={machine} --hostname={name} \\
  --network-namespace-path={netns} \\
  --bind="$H/srv:/srv" --bind-ro="$H/ssh:/run/fleet-ssh" --bind={shared}:/run/fleet-shared \\
  --bind-ro={apt}:{apt_mount}
"""
STOP_TIMEOUT = 30


def machines_available() -> str | None:
    """None if systemd hosts can run here (besides what any fleet needs), else why not."""
    for tool in ("systemd-nspawn", "debootstrap", "dpkg-scanpackages", "chroot"):
        if shutil.which(tool, path=HOST_PATH) is None:
            return f"systemd fleet hosts need {tool!r} (scripts/setup-machine test installs it)"
    return None


class SystemdFleet(Fleet):
    """A fleet whose hosts boot ``image`` with systemd; see the module docstring."""

    def __init__(self, workdir: Path, image: Image, prefix: str = "bs",
                 boot_timeout: float = 60.0, shared: Path | None = None):
        super().__init__(workdir, prefix=prefix, boot_timeout=boot_timeout, shared=shared)
        self.image = image
        self.images: dict[str, Image] = {}

    def start(self, names: Sequence[str], users: Sequence[str] = (),
              image: Image | None = None,
              images: dict[str, Image] | None = None) -> list[FleetHost]:
        """Boot one host per name (in parallel), of its image in ``images``, else of ``image``
        (default: the fleet's); users are made (password ``*``, a home, bash) once booted."""
        for name in names:
            self.images[name] = ((images or {}).get(name) or image or self.image).ensure()
        hosts = super().start(names)
        for host in hosts:
            for user in users:
                self.run(host.name, f"id -u {user} >/dev/null 2>&1 || useradd --create-home "
                                    f"--shell /bin/bash --password '*' {user}")
        return hosts

    def add_apt_source(self, name: str) -> None:
        """Make the image's local repository the host's package source (as an internal mirror)."""
        self.run(name, ["sh", "-c", "cat > /etc/apt/sources.list.d/fleet.list"], input=APT_SOURCE)

    def _prepare(self, name: str, users: Sequence[str], userland: Path | None = None) -> FleetHost:
        """As :meth:`Fleet._prepare`, from the host's image (its own Debian: ``userland``, for
        namespace hosts, does not apply)."""
        image = self.images[name]
        hostdir = self.workdir / "hosts" / name
        for sub in ("upper", "work", "root", "srv", "ssh"):
            (hostdir / sub).mkdir(parents=True, exist_ok=True)
            (hostdir / sub).chmod(0o755)
        ssh = hostdir / "ssh"
        if not (ssh / "ssh_host_ed25519_key").exists():
            _keygen(ssh / "ssh_host_ed25519_key", name)
        shutil.copyfile(self.identity.with_suffix(".pub"), ssh / "authorized_keys")
        (ssh / "authorized_keys").chmod(0o644)
        drop_in = hostdir / "upper/etc/ssh/sshd_config.d/fleet.conf"
        drop_in.parent.mkdir(parents=True, exist_ok=True)
        drop_in.write_text(SSHD_DROP_IN)
        (hostdir / "upper/etc/hostname").write_text(name + "\n")
        host = FleetHost(name=name, netns=self.netns_prefix + name, pid=0, workdir=hostdir)
        (hostdir / "boot.sh").write_text(BOOT_SCRIPT.format(
            hostdir=shlex.quote(str(hostdir)), rootfs=shlex.quote(str(image.rootfs)),
            machine=host.netns, name=name, netns=shlex.quote(str(NETNS_DIR / host.netns)),
            shared=shlex.quote(str(self.shared)), apt=shlex.quote(str(image.apt)),
            apt_mount=APT_MOUNT))
        self._hosts[name] = host
        return host

    def _boot(self, host: FleetHost) -> None:
        """Mount the host's overlay in a mount namespace of its own and boot it with nspawn."""
        with open(host.workdir / "boot.log", "wb") as log:
            self._procs[host.name] = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh",
                 str(host.workdir / "boot.sh")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_host_env(),
            )

    def _wait_ready(self, host: FleetHost, deadline: float) -> None:
        """Wait for sshd to listen, then for systemd to finish booting."""
        proc = self._procs[host.name]
        while not (host.pid and _listening(host.pid)):
            if proc.poll() is not None:
                raise FleetError(f"host {host.name} died while booting (exit {proc.returncode}):"
                                 f" {_boot_log(host)}")
            if time.monotonic() > deadline:
                raise FleetError(f"host {host.name}: sshd not listening after "
                                 f"{self.boot_timeout}s: {_boot_log(host)}")
            host.pid = host.pid or container_init(host.netns)
            time.sleep(0.02)
        left = max(1, int(deadline - time.monotonic()))
        state = self.run(host.name, ["timeout", str(left), "systemctl", "is-system-running",
                                     "--wait"], check=False).stdout.strip()
        if state != "running":
            failed = self.run(host.name, ["systemctl", "--failed", "--no-legend"],
                              check=False).stdout
            raise FleetError(f"host {host.name} booted {state or 'too slowly'}: {failed}")

    def _halt(self, host: FleetHost) -> None:
        """Shut the host down (SIGTERM to nspawn: the container's systemd powers off)."""
        proc = self._procs.pop(host.name, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if host.pid:
                os.kill(host.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        host.pid = 0


def container_init(netns: str) -> int:
    """The pid (in our PID namespace) of the container's PID 1 in the named network namespace,
    0 if it is not running yet."""
    for pid, status in _proc_files("status"):
        nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
        if len(nspid) == 2 and nspid[1] == "1" and _runs_in(pid, netns):
            return pid
    return 0
