"""Another Debian release's userland for fleet hosts: its Python, glibc, OpenSSH, nginx, gcc.

A fleet host started with a userland (``Fleet.start(..., userlands=...)``) runs that root
filesystem's ``/usr``, ``/etc`` and ``/var`` instead of the machine's: on a Debian 12 machine, a
Debian 13 host with Python 3.13 and glibc 2.41, the platform a workstation on Python 3.11
must build for without running it (issue 15: artefacts for the host, not the workstation).

It is made once by ``debootstrap --variant=minbase`` with what a fleet host runs and what a
builder host needs (a C compiler and Python headers), and cached in ``$BACKSTAGE_FLEET_CACHE``
(default ``/var/cache/backstage-fleet``) under the release and a hash of the package list,
built aside and renamed into place under a lock (``scripts/setup-machine test`` builds it).

``python -m backstage.sandbox.userland [RELEASE]`` builds it (if needed) and prints its path.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE_ENV = "BACKSTAGE_FLEET_CACHE"
DEFAULT_CACHE = Path("/var/cache/backstage-fleet")
# libxml2: what the Emperor's uWSGI links (setup-stage would install it otherwise).
PACKAGES = ("openssh-server", "python3", "python3-venv", "python3-dev", "gcc", "libc6-dev",
            "nginx-light", "procps", "util-linux", "socat", "iproute2", "curl", "ca-certificates",
            "libxml2")
DONE = "complete"


def cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def userland(release: str = "trixie", packages: tuple[str, ...] = PACKAGES) -> Path:
    """The root filesystem of ``release`` with ``packages``, built on first use."""
    key = hashlib.sha256(" ".join([release, *sorted(packages)]).encode()).hexdigest()[:12]
    folder = cache() / f"userland-{release}-{key}"
    if (folder / DONE).exists():
        return folder / "rootfs"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE).exists():
            building = Path(f"{folder}.tmp")
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", release,
                 str(building / "rootfs")], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"debootstrap {release} failed: {done.stdout[-2000:]}"
                                   f"{done.stderr[-2000:]}")
            offline(building / "rootfs")
            (building / DONE).touch()
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(building, folder)
    return folder / "rootfs"


def offline(rootfs: Path) -> None:
    """No package source: a test host never reaches the network (what it lacks, setup-stage
    then names in one line instead of trying a mirror)."""
    (rootfs / "etc" / "apt" / "sources.list").write_text("")
    for source in (rootfs / "etc" / "apt" / "sources.list.d").glob("*"):
        source.unlink()


if __name__ == "__main__":
    print(userland(*sys.argv[1:2]))
