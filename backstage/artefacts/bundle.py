"""Pack an act's source into one gzip tarball, streamed to each host.

The release id is the UTC time plus a digest of the content, so the same source gives the same
digest and a reader of ``releases/`` sees both when and what.
"""

import hashlib
import io
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_DIRS = {".git", ".hg", "__pycache__", ".venv", "venv", "node_modules", "var",
                 ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"}
# ".env": dotenv and secrets files never travel in a release (secrets go in the env file only).
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".sqlite3", ".log", ".env")


@dataclass(frozen=True)
class Bundle:
    release: str
    digest: str
    data: bytes
    files: int


def source_files(source: Path, exclude: frozenset[Path] = frozenset()) -> list[Path]:
    """The entries of a release, sorted, without caches, local databases or VCS folders.

    Symlinks (to files or folders, dangling or not) are entries of their own and travel as
    links, as they are in the source tree.
    """
    found = []
    for folder, dirs, files in os.walk(source):
        links = [d for d in dirs if Path(folder, d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and d not in links)
        names = [f for f in files if not f.endswith(EXCLUDED_SUFFIXES)] + links
        found += [Path(folder, name) for name in sorted(names)
                  if Path(folder, name).absolute() not in exclude]
    return found


def content_digest(source: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link\0" + os.readlink(path).encode() + b"\0")
            continue
        digest.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def release_id(digest: str, now: float | None = None) -> str:
    """``<UTC time to the millisecond>-<digest>``: ids sort in the order releases were made."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}{int(now % 1 * 1000):03d}Z-{digest[:8]}"


def pack(source: Path, now: float | None = None, exclude: frozenset[Path] = frozenset()) -> Bundle:
    """A tar.gz of the source under ``code/``, built in memory, sent as is to every host.

    ``exclude``: absolute paths left out (the act's secrets file, when it lies in the source).
    """
    files = source_files(source, frozenset(p.absolute() for p in exclude))
    digest = content_digest(source, files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=f"code/{path.relative_to(source)}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.issym():
                tar.addfile(info)
                continue
            with path.open("rb") as f:
                tar.addfile(info, f)
    return Bundle(release_id(digest, now), digest, buffer.getvalue(), len(files))
