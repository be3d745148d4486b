"""Wheels on the workstation: the cache, ``pip wheel``, and the tar that ships them to a host.

The cache is ``$BACKSTAGE_CACHE`` (default ``~/.cache/backstage``). :func:`build` builds wheels
with the workstation's own Python, for what runs here: the venue API (:mod:`backstage.venues`)
and the editable, VCS and local requirements of a deploy. A deploy's other wheels are picked
for each host's platform (:mod:`backstage.artefacts.locks`).
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from backstage.errors import BackstageError

DONE_MARKER = ".complete"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "backstage"
    return Path(os.environ.get("BACKSTAGE_CACHE", default)).expanduser()


def workstation_tag() -> str:
    return sys.implementation.cache_tag


def venue_digest(python: str, requirements: str) -> str:
    """The key of a venue: which interpreter, which resolved requirements (each wheel's name,
    version and hash: the wheels say the platform; see :mod:`backstage.artefacts.locks`)."""
    text = f"{python}\n{requirements}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def interpreter_key() -> str:
    """Which Python builds the wheels: compiled wheels (uWSGI) embed it."""
    identity = f"{os.path.realpath(sys.executable)}\n{sys.version}"
    return hashlib.sha256(identity.encode()).hexdigest()[:8]


class BuildFailed(BackstageError):
    """``pip wheel`` failed; ``tail`` holds the start of its last lines."""

    def __init__(self, label: str, tail: str):
        self.tail = tail
        super().__init__(f"building wheels for {label} failed: {tail}")


def pip_wheel(requirement_args: list[str], target: Path, cwd: Path | None = None,
              label: str = "") -> None:
    """``pip wheel`` into ``target`` (in ``cwd``, where relative paths are read from)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet",
         "--use-pep517", "--wheel-dir", str(target), *requirement_args],
        capture_output=True, text=True, check=False, cwd=cwd,
    )
    if done.returncode != 0:
        raise BuildFailed(label or " ".join(requirement_args),
                          pip_reason(done.stderr or done.stdout))


def pip_reason(output: str) -> str:
    """pip's error lines (``ERROR:``, and ``fatal:`` of a VCS it ran), else its last lines;
    each cut short, as pip's can be huge (every version it saw)."""
    lines = [line.strip() for line in output.strip().splitlines()]
    errors = list(dict.fromkeys(line for line in lines if line.startswith(("ERROR:", "fatal:"))))
    return " ".join(line[:300] for line in (errors or lines)[-3:])


def build(requirement_args: list[str], key: str, label: str,
          cwd: Path | None = None) -> list[Path]:
    """``pip wheel`` into the cache (once per key); return the wheel files."""
    target = cache_dir() / "wheels" / f"{workstation_tag()}-{interpreter_key()}-{key}"
    if not (target / DONE_MARKER).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built aside then renamed: two deploys (or test runs) building the same key at once
        # never see each other's half-written wheels.
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            pip_wheel(requirement_args, building, cwd, label)
        except BuildFailed:
            shutil.rmtree(building, ignore_errors=True)
            raise
        (building / DONE_MARKER).touch()
        try:
            os.replace(building, target)
        except OSError:  # another build finished first (or a stale empty dir from old versions)
            if not (target / DONE_MARKER).exists():
                shutil.rmtree(target, ignore_errors=True)
                os.replace(building, target)
            shutil.rmtree(building, ignore_errors=True)
    return sorted(target.glob("*.whl"))


def for_uwsgi(requirement: str) -> list[Path]:
    key = hashlib.sha256(requirement.encode()).hexdigest()[:12]
    return build([requirement], key, requirement)


def pack(wheels: list[Path], skip: set[str] = frozenset(),
         extra: dict[str, bytes] | None = None) -> bytes:
    """A tar of the wheels the host lacks, plus extra named files (e.g. requirements)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for wheel in wheels:
            if wheel.name not in skip:
                tar.add(str(wheel), arcname=wheel.name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
