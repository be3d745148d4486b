"""Pack a source tree for the hosts: in full, or as the changes from a tree a host already has.

A tree is described by its *manifest*: relative path -> ``[kind, content digest or link
target, size]``. Its digest (a hash of the sorted manifest, computed by the host-side helper's
own functions so that both ends agree) names it on the host, under ``trees/<digest>``, and ends
each release id, so the same source gives the same digest and a reader of ``releases/`` sees
both when and what.

Every manifest packed is kept in the workstation's cache under its digest (content-addressed,
so never stale). When the probe says which trees a host has, :meth:`Bundle.upload_for` picks
the one whose manifest differs least from the new tree and sends only added or changed files,
plus the list of removed paths; the host applies them to a hard-link copy of that tree and
checks the result against the digest before using it.
"""

import hashlib
import io
import json
import os
import stat
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from backstage.artefacts.wheelhouse import cache_dir
from backstage.model.layout import OVERLAY_DIR, STATIC_DIR
from backstage.remote.core import manifest_digest, tree_entry

EXCLUDED_DIRS = {".git", ".hg", "__pycache__", ".venv", "venv", "node_modules", "var",
                 ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", STATIC_DIR,
                 OVERLAY_DIR}
# ".env": dotenv and secrets files never travel in a release (secrets go in the env file only).
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".sqlite3", ".log", ".env")
# Past this much text, removed paths would not fit one command line: upload in full instead.
MAX_REMOVED_TEXT = 64 * 1024


def source_files(source: Path, exclude: frozenset[Path] = frozenset()) -> list[Path]:
    """The entries of a release, sorted, without caches, local databases or VCS folders.

    Symlinks (to files or folders, dangling or not) are entries of their own and travel as
    links, as they are in the source tree.
    """
    found = []
    for folder, dirs, files in os.walk(source):
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and d not in links)
        names = [f for f in files if not f.endswith(EXCLUDED_SUFFIXES)] + links
        paths = [Path(folder, name) for name in sorted(names)]
        found += [p for p in paths if p.absolute() not in exclude] if exclude else paths
    return found


def manifest(source: Path, files: list[Path]) -> dict[str, list]:
    """Relative path -> [kind, digest or link target, size] for each file of the tree.

    A file whose size, mtime, inode and mode are those the last manifest of this folder saw
    keeps the digest it had then (:class:`StatCache`, as git's index does): a re-run over an
    unchanged project stats its files instead of hashing them.
    """
    known = StatCache(source)
    found = {}
    for path in files:
        relative = str(path.relative_to(source))
        found[relative] = known.entry(path, relative)
    known.save()
    return found


class StatCache:
    """The digests of a source folder's files by (path, size, mtime, inode, mode), kept in
    the workstation's cache between runs, one file per source folder.

    A file modified in the last :attr:`RACY_SECONDS` is hashed but not remembered: a second
    edit within the clock's granularity could leave its size and mtime as they were.
    """

    RACY_SECONDS = 2

    def __init__(self, source: Path):
        name = hashlib.sha256(str(source.absolute()).encode()).hexdigest()[:16]
        self.path = cache_dir() / "stats" / f"{name}.json"
        try:
            self.old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.old = {}
        self.new: dict[str, list] = {}

    def entry(self, path: Path, relative: str) -> list:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return [*tree_entry(str(path)), 0]
        key = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]
        cached = self.old.get(relative)
        entry = cached[4:] if isinstance(cached, list) and cached[:4] == key \
            else tree_entry(str(path))
        if time.time_ns() - st.st_mtime_ns > self.RACY_SECONDS * 1_000_000_000:
            self.new[relative] = [*key, *entry]
        return [*entry, st.st_size]

    def save(self) -> None:
        """Write the cache aside, then rename it (concurrent runs each leave a whole file)."""
        if self.new == self.old:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aside = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        aside.write_text(json.dumps(self.new))
        aside.replace(self.path)


def release_id(digest: str, now: float | None = None) -> str:
    """``<UTC time to the millisecond>-<digest>``: ids sort in the order releases were made."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}{int(now % 1 * 1000):03d}Z-{digest[:8]}"


def manifests_dir() -> Path:
    return cache_dir() / "manifests"


def remember(digest: str, entries: dict[str, list]) -> None:
    """Keep a packed tree's manifest in the cache (written aside, then renamed)."""
    target = manifests_dir() / f"{digest}.json"
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(entries, sort_keys=True))
    os.replace(partial, target)


def recall(digest: str) -> dict[str, list] | None:
    """A manifest packed earlier, if the cache still has it (and it is what it claims)."""
    try:
        entries = json.loads((manifests_dir() / f"{digest}.json").read_text())
    except (OSError, ValueError):
        return None
    return entries if manifest_digest(entries) == digest else None


def changes(new: dict[str, list], base: dict[str, list]) -> tuple[list[str], list[str]]:
    """Paths to send (added or changed) and paths to remove, to turn ``base`` into ``new``."""
    changed = sorted(p for p, entry in new.items() if base.get(p, [None])[:2] != entry[:2])
    removed = sorted(p for p in base if p not in new)
    return changed, removed


@dataclass(frozen=True)
class Upload:
    """What one host receives: nothing (it has the tree), the whole tree, or a delta."""

    digest: str
    present: bool = False
    base: str | None = None
    removed: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    data: bytes = b""

    def describe(self) -> str:
        size = f"{len(self.data) / 1024:.1f} KiB"
        if self.present:
            return "tree already on the host"
        if self.base is None:
            return f"{len(self.paths)} files, {size}"
        return (f"{len(self.paths)} changed, {len(self.removed)} removed from tree "
                f"{self.base[:8]}, {size}")


@dataclass
class Bundle:
    """A source tree ready to go: its manifest, digest and release id; tarballs on demand."""

    source: Path
    entries: dict[str, list]
    digest: str
    release: str
    _uploads: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def files(self) -> int:
        return len(self.entries)

    def tarball(self, paths) -> bytes:
        """A tar.gz of the given entries, named by their path in the tree."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            for relative in paths:
                path = self.source / relative
                info = tar.gettarinfo(str(path), arcname=relative)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.issym():
                    tar.addfile(info)
                    continue
                with path.open("rb") as f:
                    tar.addfile(info, f)
        return buffer.getvalue()

    def full(self) -> bytes:
        return self.tarball(sorted(self.entries))

    def upload_for(self, host_trees: set[str]) -> Upload:
        """The cheapest upload for a host that has ``host_trees``; built once per base."""
        if self.digest in host_trees:
            return Upload(self.digest, present=True)
        base = self.best_base(host_trees)
        with self._lock:
            if base not in self._uploads:
                self._uploads[base] = self._upload(base)
            return self._uploads[base]

    def best_base(self, host_trees: set[str]) -> str | None:
        """The tree on the host (with a manifest in our cache) that needs the fewest bytes."""
        best, best_bytes = None, None
        for digest in sorted(host_trees):
            entries = recall(digest)
            if entries is None:
                continue
            changed, removed = changes(self.entries, entries)
            if len(json.dumps(removed)) > MAX_REMOVED_TEXT:
                continue
            size = sum(self.entries[p][2] for p in changed)
            if best_bytes is None or size < best_bytes:
                best, best_bytes = digest, size
        return best

    def _upload(self, base: str | None) -> Upload:
        if base is None:
            return Upload(self.digest, paths=tuple(sorted(self.entries)), data=self.full())
        changed, removed = changes(self.entries, recall(base))
        return Upload(self.digest, base=base, removed=tuple(removed), paths=tuple(changed),
                      data=self.tarball(changed))


def pack(source: Path, now: float | None = None, exclude: frozenset[Path] = frozenset()) -> Bundle:
    """Describe the source tree and remember its manifest; tarballs are built per upload.

    ``exclude``: absolute paths left out (the acts' secrets files, when they lie in the source).
    """
    files = source_files(source, frozenset(p.absolute() for p in exclude))
    entries = manifest(source, files)
    digest = manifest_digest(entries)
    remember(digest, entries)
    return Bundle(source, entries, digest, release_id(digest, now))

