"""Another Debian release's userland for fleet hosts: its Python, glibc, OpenSSH, nginx, gcc.

A fleet host started with a userland (``Fleet.start(..., userlands=...)``) runs that root
filesystem's ``/usr``, ``/etc`` and ``/var`` instead of the machine's: on a Debian 12 machine, a
Debian 13 host with Python 3.13 and glibc 2.41, the platform a workstation on Python 3.11
must build for without running it (issue 15: artefacts for the host, not the workstation).

It is made once by ``debootstrap --variant=minbase`` with what a fleet host runs and what a
builder host needs (a C compiler and Python headers), and cached in ``$BACKSTAGE_FLEET_CACHE``
(default ``/var/cache/backstage-fleet``) under the release and a hash of the package list, by
the builder of the systemd hosts' images (:func:`backstage.sandbox.images.cached`: built aside
and renamed into place under a lock; ``scripts/setup-machine test`` builds it).

``python -m backstage.sandbox.userland [RELEASE]`` builds it (if needed) and prints its path.
"""

import hashlib
import sys
from pathlib import Path

from backstage.sandbox.images import cached, debootstrap, offline

# libxml2: what the Emperor's uWSGI links (setup-stage would install it otherwise).
PACKAGES = ("openssh-server", "python3", "python3-venv", "python3-dev", "gcc", "libc6-dev",
            "nginx-light", "procps", "util-linux", "socat", "iproute2", "curl", "ca-certificates",
            "libxml2")


def userland(release: str = "trixie", packages: tuple[str, ...] = PACKAGES) -> Path:
    """The root filesystem of ``release`` with ``packages``, built on first use (with no
    package source left: see :func:`~backstage.sandbox.images.offline`)."""
    key = hashlib.sha256(" ".join([release, *sorted(packages)]).encode()).hexdigest()[:12]

    def build(tmp: Path) -> None:
        debootstrap(release, packages, tmp / "rootfs")
        offline(tmp / "rootfs")

    return cached(f"userland-{release}-{key}", build) / "rootfs"


if __name__ == "__main__":
    print(userland(*sys.argv[1:2]))
