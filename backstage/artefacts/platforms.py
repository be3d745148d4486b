"""A host's wheel platform: what its interpreter and system accept, whatever the workstation is.

The probe reports the host's interpreter (implementation, version, ``SOABI``), the platform it
was built for (``sysconfig.get_platform()``) and its C library (``platform.libc_ver()``); from
these facts :class:`Platform` derives the wheel tags the host's pip accepts, with
``packaging.tags`` (the functions pip uses for its own ``--platform``/``--abi`` options), so a
macOS or Windows workstation picks wheels by the host's tags, never by its own.

``linux_<arch>`` wheels (built on some Linux machine, for its own C library) are accepted only
from a builder host of the same platform (see :mod:`backstage.artefacts.locks`): downloads and
wheels made on the workstation must carry a ``manylinux`` tag the host accepts.
"""

from dataclasses import dataclass
from functools import lru_cache

from packaging import tags as wheel_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from backstage.errors import BackstageError

# PEP 600: the glibc versions of the legacy manylinux names (as packaging.tags._manylinux).
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# The oldest glibc of a manylinux tag: 2.5 (manylinux1) where that existed, else 2.17.
OLDEST_GLIBC_MINOR = {"x86_64": 5, "i686": 5}
IMPLEMENTATIONS = {"cpython": "cp", "pypy": "pp"}


@dataclass(frozen=True)
class Platform:
    """What decides which wheels a host can install."""

    implementation: str  # "cp", "pp"
    version: tuple[int, int]  # the interpreter's Python version
    abi: str  # "cp313", "cp313t", "pypy310_pp73"
    arch: str  # "x86_64", "aarch64"
    glibc: tuple[int, int] | None  # None: another C library (musl), no manylinux wheel fits

    @classmethod
    def from_probe(cls, facts: dict) -> "Platform":
        """From the host helper's ``platform`` facts (see ``hostside.platform_facts``)."""
        system, _, arch = facts["sysplatform"].partition("-")
        if system != "linux":
            raise BackstageError(f"hosts must run Linux, not {facts['sysplatform']}")
        if arch in ("x86_64", "aarch64") and not facts.get("is64bit", True):
            arch = {"x86_64": "i686", "aarch64": "armv8l"}[arch]
        major, minor = (int(p) for p in facts["version"].split(".")[:2])
        glibc = None
        if facts.get("libc") == "glibc" and facts.get("libc_version"):
            glibc_major, glibc_minor = facts["libc_version"].split(".")[:2]
            glibc = (int(glibc_major), int(glibc_minor))
        name = facts["implementation"]
        return cls(IMPLEMENTATIONS.get(name, name), (major, minor), abi_tag(facts["soabi"]),
                   arch.replace("-", "_").replace(".", "_"), glibc)

    @property
    def interpreter(self) -> str:
        return f"{self.implementation}{self.version[0]}{self.version[1]}"

    @property
    def key(self) -> str:
        """A name for caches and logs: ``cp313-cp313-manylinux_2_41_x86_64``."""
        return f"{self.interpreter}-{self.abi}-{self.newest_platform}"

    @property
    def newest_platform(self) -> str:
        return self.portable_platforms[0] if self.portable_platforms else self.local_platform

    @property
    def local_platform(self) -> str:
        return f"linux_{self.arch}"

    @property
    def portable_platforms(self) -> list[str]:
        """``manylinux`` platform tags the host's glibc runs, newest first (PEP 600)."""
        if self.glibc is None or self.glibc[0] != 2:
            return []
        found = []
        for minor in range(self.glibc[1], OLDEST_GLIBC_MINOR.get(self.arch, 17) - 1, -1):
            found.append(f"manylinux_2_{minor}_{self.arch}")
            if (2, minor) in LEGACY_MANYLINUX:
                found.append(f"{LEGACY_MANYLINUX[(2, minor)]}_{self.arch}")
        return found

    def tags(self, portable_only: bool = False) -> list[wheel_tags.Tag]:
        """The host's wheel tags, most specific first (as its pip ranks them)."""
        platforms = self.portable_platforms + ([] if portable_only else [self.local_platform])
        if self.implementation == "cp":
            specific = wheel_tags.cpython_tags(self.version, [self.abi], platforms)
        else:
            specific = wheel_tags.generic_tags(self.interpreter, [self.abi], platforms)
        return [*specific, *wheel_tags.compatible_tags(self.version, self.interpreter, platforms)]

    def accepts(self, wheel: str, portable_only: bool = True) -> bool:
        """Whether the host installs this wheel file; ``portable_only``: not ``linux_*``
        wheels (built for one machine's C library), as for wheels not built on this platform."""
        try:
            found = parse_wheel_filename(wheel)[3]
        except InvalidWheelFilename:
            return False
        return not found.isdisjoint(self.tag_set(portable_only))

    @lru_cache(maxsize=4)  # noqa: B019 (a few frozen platforms per run)
    def tag_set(self, portable_only: bool) -> frozenset[wheel_tags.Tag]:
        return frozenset(self.tags(portable_only))

    def pip_download_args(self) -> list[str]:
        """pip's options to fetch wheels for this host instead of the running interpreter."""
        args = [f"--platform={p}" for p in self.portable_platforms]
        return [*args, f"--python-version={self.version[0]}.{self.version[1]}",
                f"--implementation={self.implementation}", f"--abi={self.abi}",
                "--only-binary=:all:"]

    def __str__(self) -> str:
        name = {"cp": "CPython", "pp": "PyPy"}.get(self.implementation, self.implementation)
        libc = f"glibc {self.glibc[0]}.{self.glibc[1]}" if self.glibc else "no glibc"
        return f"{name} {self.version[0]}.{self.version[1]} ({self.abi}, Linux {self.arch}, {libc})"


def abi_tag(soabi: str | None) -> str:
    """The ABI tag of an interpreter from its ``SOABI`` (``cpython-313t-x86_64-linux-gnu`` ->
    ``cp313t``, ``pypy310-pp73-...`` -> ``pypy310_pp73``), as ``packaging.tags`` derives it
    from ``EXT_SUFFIX`` for the running one."""
    if not soabi:
        raise BackstageError("the host's Python reports no SOABI: cannot tell its wheel ABI")
    parts = soabi.split("-")
    if parts[0] == "cpython":
        return f"cp{parts[1]}"
    if parts[0].startswith("pypy") and len(parts) > 1:
        return f"{parts[0]}_{parts[1]}"
    return parts[0].replace(".", "_")
