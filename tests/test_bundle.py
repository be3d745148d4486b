"""Packing an act's source into the release tarball."""

import calendar
import hashlib
import io
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from backstage.artefacts import bundle as bundle_module
from backstage.artefacts.bundle import (
    Upload,
    changes,
    manifest_digest,
    manifests_dir,
    pack,
    recall,
    release_id,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "storefront"
# UTC time to the millisecond, then the content digest's first 8 hex digits.
RELEASE_RE = re.compile(r"[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}")


def make_source(root: Path) -> Path:
    source = root / "src"
    files = {
        "manage.py": "print('manage')\n",
        "shop/__init__.py": "",
        "shop/settings.py": "DEBUG = False\n",
        "shop/templates/var.html": "a file named like an excluded dir\n",
        "shop/static/app.css": "body {}\n",
        "shop/__pycache__/settings.cpython-311.pyc": "bytecode",
        "shop/views.pyc": "stray bytecode",
        "shop/notes.pyo": "stray",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".git/objects/ab/cdef": "blob",
        "var/db.sqlite3": "data",
        "var/media/upload.png": "png",
        "db.sqlite3": "local database",
        "debug.log": "log",
        "node_modules/x/index.js": "js",
        ".venv/bin/python": "venv",
        "sub/.pytest_cache/v": "cache",
        ".env.example": "KEY=value\n",
    }
    for name, text in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return source


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def contents(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_pack_keeps_code_under_code_and_drops_excluded(tmp_path):
    source = make_source(tmp_path)
    bundle = pack(source)
    names = set(members(bundle.full()))
    assert names == {
        "manage.py",
        "shop/__init__.py",
        "shop/settings.py",
        "shop/templates/var.html",
        "shop/static/app.css",
        ".env.example",
    }
    assert bundle.files == len(names)
    for excluded in ("__pycache__", ".git", ".pyc", ".pyo", "var/", ".sqlite3", ".log",
                     "node_modules", ".venv", ".pytest_cache"):
        assert not any(excluded in name for name in names), excluded
    assert contents(bundle.full())["shop/settings.py"] == b"DEBUG = False\n"


def test_pack_members_are_owned_by_root_and_keep_modes(tmp_path):
    source = make_source(tmp_path)
    (source / "manage.py").chmod(0o755)
    found = members(pack(source).full())
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == ""
               for m in found.values())
    assert found["manage.py"].mode & 0o777 == 0o755
    assert found["shop/settings.py"].mode & 0o777 == 0o644
    assert all(m.isfile() for m in found.values())
    assert all(not m.name.startswith("/") and ".." not in m.name.split("/") for m in found.values())


def test_digest_is_stable_for_the_same_content(tmp_path):
    first = pack(make_source(tmp_path / "a"))
    second_source = make_source(tmp_path / "b")
    # Timestamps and excluded files do not count.
    os.utime(second_source / "manage.py", (0, 0))
    (second_source / "shop" / "__pycache__" / "other.pyc").write_text("more bytecode")
    (second_source / "var" / "new.txt").write_text("runtime data")
    second = pack(second_source)
    assert first.digest == second.digest
    assert len(first.digest) == 64
    assert first.release.endswith("-" + first.digest[:8])
    assert contents(first.full()) == contents(second.full())


@pytest.mark.parametrize("change", ["one-byte", "mode", "rename", "new-file", "empty-file",
                                    "move-between-dirs"])
def test_digest_changes_with_any_content_change(tmp_path, change):
    source = make_source(tmp_path)
    before = pack(source).digest
    settings = source / "shop" / "settings.py"
    if change == "one-byte":
        settings.write_text("DEBUG = Falsf\n")
    elif change == "mode":
        settings.chmod(0o755)
    elif change == "rename":
        settings.rename(source / "shop" / "settings2.py")
    elif change == "new-file":
        (source / "shop" / "new.py").write_text("")
    elif change == "empty-file":
        (source / "shop" / "__init__.py").write_text("\n")
    elif change == "move-between-dirs":
        # Same bytes at a path that differs only in where the separator falls.
        (source / "shop" / "static" / "app.css").rename(source / "shop" / "static.app.css")
    assert pack(source).digest != before


def test_digest_tells_file_boundaries_apart(tmp_path):
    """Two sources whose concatenated bytes are alike but whose files differ."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root, files in ((a, {"x": "12", "y": "3"}), (b, {"x": "1", "y": "23"})):
        root.mkdir()
        for name, text in files.items():
            (root / name).write_text(text)
    assert pack(a).digest != pack(b).digest


def test_release_id_format():
    digest = "0123abcd" + "f" * 56
    now = calendar.timegm((2024, 2, 29, 23, 59, 58, 0, 0, 0)) + 0.75
    assert release_id(digest, now) == "20240229T235958750Z-0123abcd"
    assert release_id(digest, now - 0.75) == "20240229T235958000Z-0123abcd"
    assert RELEASE_RE.fullmatch(release_id(digest))


def test_pack_release_id_uses_given_time(tmp_path):
    bundle = pack(make_source(tmp_path), now=0)
    assert bundle.release == f"19700101T000000000Z-{bundle.digest[:8]}"
    assert RELEASE_RE.fullmatch(pack(make_source(tmp_path / "x")).release)


def test_release_ids_sort_by_time(tmp_path):
    times = (1_000_000_000, 1_700_000_000, 1_700_000_000.25, 1_700_000_000.5, 1_700_000_001)
    ids = [release_id(digest, t) for t, digest in zip(times, ["f" * 64, "0" * 64] * 3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_pack_example_storefront(tmp_path):
    copy = tmp_path / "storefront"
    shutil.copytree(EXAMPLE, copy)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (copy / "db.sqlite3").write_bytes(b"SQLite")
    bundle = pack(copy)
    names = set(members(bundle.full()))
    assert "manage.py" in names and "requirements.txt" in names
    assert "storefront/settings.py" in names
    assert not any(n.endswith((".pyc", ".sqlite3")) or "__pycache__" in n for n in names)
    assert bundle.digest == pack(copy).digest


def test_symlinked_file_is_kept_as_a_link(tmp_path):
    source = make_source(tmp_path)
    (source / "shop" / "link.py").symlink_to("settings.py")
    found = members(pack(source).full())
    assert found["shop/link.py"].issym()
    assert found["shop/link.py"].linkname == "settings.py"


def test_dangling_symlink_does_not_crash_pack(tmp_path):
    source = make_source(tmp_path)
    (source / "shop" / ".#settings.py").symlink_to("user@host.1234:1700000000")
    pack(source)


def test_symlinked_directory_is_not_silently_dropped(tmp_path):
    source = make_source(tmp_path)
    shared = tmp_path / "shared-assets"
    shared.mkdir()
    (shared / "logo.svg").write_text("<svg/>")
    (source / "shop" / "assets").symlink_to(shared)
    names = set(members(pack(source).full()))
    assert "shop/assets" in names or "shop/assets/logo.svg" in names


# --- manifests and deltas ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Manifests packed by these tests go to a cache of their own."""
    monkeypatch.setattr(bundle_module, "cache_dir", lambda: tmp_path / "cache")


def test_manifest_records_kind_digest_and_size_and_is_remembered(tmp_path):
    source = make_source(tmp_path)
    (source / "manage.py").chmod(0o700)
    (source / "shop" / "link.py").symlink_to("settings.py")
    bundle = pack(source)
    assert bundle.entries["manage.py"][0] == "exec"
    assert bundle.entries["shop/settings.py"] == [
        "file", hashlib.sha256(b"DEBUG = False\n").hexdigest(), 14]
    assert bundle.entries["shop/link.py"] == ["link", "settings.py", 0]
    assert recall(bundle.digest) == bundle.entries
    assert manifest_digest(bundle.entries) == bundle.digest


def test_a_tampered_cached_manifest_is_not_used(tmp_path):
    bundle = pack(make_source(tmp_path))
    cached = manifests_dir() / f"{bundle.digest}.json"
    cached.write_text(cached.read_text().replace("manage.py", "manage2.py"))
    assert recall(bundle.digest) is None


def test_changes_lists_added_changed_and_removed_paths():
    base = {"a": ["file", "1", 1], "b": ["file", "2", 1], "c": ["link", "a", 0],
            "d": ["file", "4", 1]}
    new = {"a": ["file", "1", 1], "b": ["exec", "2", 1], "c": ["link", "b", 0],
           "e": ["file", "5", 1]}
    assert changes(new, base) == (["b", "c", "e"], ["d"])
    assert changes(base, base) == ([], [])


def test_upload_is_nothing_for_a_tree_the_host_has_and_everything_without_a_base(tmp_path):
    bundle = pack(make_source(tmp_path))
    assert bundle.upload_for({bundle.digest}) == Upload(bundle.digest, present=True)
    full = bundle.upload_for({"f" * 64})  # a tree this workstation never packed
    assert full.base is None and full.data == bundle.full()
    assert full.paths == tuple(sorted(bundle.entries))


def test_delta_carries_only_changes_from_the_cheapest_base(tmp_path):
    source = make_source(tmp_path)
    (source / "big.bin").write_bytes(os.urandom(256 * 1024))
    old = pack(source)
    (source / "shop" / "settings.py").write_text("DEBUG = True\n")
    middle = pack(source)
    (source / "shop" / "static" / "app.css").unlink()
    (source / "shop" / "new.py").write_text("x = 1\n")
    new = pack(source)
    upload = new.upload_for({old.digest, middle.digest})
    assert upload.base == middle.digest
    assert upload.paths == ("shop/new.py",)
    assert upload.removed == ("shop/static/app.css",)
    assert set(contents(upload.data)) == {"shop/new.py"}
    assert len(upload.data) < 1024 < len(new.full()) // 100
    from_old = new.upload_for({old.digest})
    assert from_old.paths == ("shop/new.py", "shop/settings.py")


def test_too_many_removed_paths_mean_a_full_upload(tmp_path):
    source = make_source(tmp_path)
    crowd = source / "crowd"
    crowd.mkdir()
    for i in range(3000):
        (crowd / f"file-with-a-long-name-{i:05d}.txt").write_text("")
    before = pack(source)
    shutil.rmtree(crowd)
    assert pack(source).upload_for({before.digest}).base is None


def aged(source: Path) -> None:
    """Every file of the tree last modified an hour ago: past the stat cache's racy window."""
    for path in source.rglob("*"):
        if path.is_file():
            os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 3600))


def counting_hashes(monkeypatch) -> list[str]:
    hashed = []
    original = bundle_module.tree_entry

    def counting(path):
        hashed.append(os.path.basename(path))
        return original(path)

    monkeypatch.setattr(bundle_module, "tree_entry", counting)
    return hashed


def test_an_unchanged_tree_is_not_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    source = make_source(tmp_path)
    aged(source)
    first = pack(source)
    hashed = counting_hashes(monkeypatch)
    second = pack(source)
    assert hashed == []
    assert second.entries == first.entries and second.digest == first.digest


@pytest.mark.parametrize("change", ["edited", "replaced-same-size-and-mtime", "chmod"])
def test_the_stat_cache_notices_a_changed_file(tmp_path, monkeypatch, change):
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    source = make_source(tmp_path)
    aged(source)
    before = pack(source)
    settings = source / "shop" / "settings.py"
    was = settings.stat()
    if change == "edited":  # same size, a new mtime (the edit's time: within the racy window)
        settings.write_text("DEBUG = Truee\n")
    elif change == "replaced-same-size-and-mtime":  # an editor's save: a new file renamed over
        replacement = settings.with_name("tmp")
        replacement.write_text("DEBUG = Truee\n")
        os.utime(replacement, ns=(was.st_atime_ns, was.st_mtime_ns))
        replacement.replace(settings)
    else:
        settings.chmod(0o755)
    hashed = counting_hashes(monkeypatch)
    after = pack(source)
    assert hashed == ["settings.py"]
    assert after.digest != before.digest
    assert after.entries["shop/settings.py"] == [
        *bundle_module.tree_entry(str(settings)), settings.stat().st_size]


def test_a_file_modified_just_now_is_hashed_again_next_time(tmp_path, monkeypatch):
    """Within the clock's granularity a second edit could keep size and mtime: not cached."""
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    source = make_source(tmp_path)
    aged(source)
    (source / "manage.py").write_text("print('edit')\n")
    pack(source)
    hashed = counting_hashes(monkeypatch)
    pack(source)
    assert hashed == ["manage.py"]
