"""Packing an act's source into the release tarball."""

import calendar
import io
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from backstage.artefacts.bundle import pack, release_id

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
    names = set(members(bundle.data))
    assert names == {
        "code/manage.py",
        "code/shop/__init__.py",
        "code/shop/settings.py",
        "code/shop/templates/var.html",
        "code/shop/static/app.css",
        "code/.env.example",
    }
    assert bundle.files == len(names)
    for excluded in ("__pycache__", ".git", ".pyc", ".pyo", "var/", ".sqlite3", ".log",
                     "node_modules", ".venv", ".pytest_cache"):
        assert not any(excluded in name for name in names), excluded
    assert contents(bundle.data)["code/shop/settings.py"] == b"DEBUG = False\n"


def test_pack_members_are_owned_by_root_and_keep_modes(tmp_path):
    source = make_source(tmp_path)
    (source / "manage.py").chmod(0o755)
    found = members(pack(source).data)
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == ""
               for m in found.values())
    assert found["code/manage.py"].mode & 0o777 == 0o755
    assert found["code/shop/settings.py"].mode & 0o777 == 0o644
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
    assert contents(first.data) == contents(second.data)


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
    names = set(members(bundle.data))
    assert "code/manage.py" in names and "code/requirements.txt" in names
    assert "code/storefront/settings.py" in names
    assert not any(n.endswith((".pyc", ".sqlite3")) or "__pycache__" in n for n in names)
    assert bundle.digest == pack(copy).digest


def test_symlinked_file_is_kept_as_a_link(tmp_path):
    source = make_source(tmp_path)
    (source / "shop" / "link.py").symlink_to("settings.py")
    found = members(pack(source).data)
    assert found["code/shop/link.py"].issym()
    assert found["code/shop/link.py"].linkname == "settings.py"


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
    names = set(members(pack(source).data))
    assert "code/shop/assets" in names or "code/shop/assets/logo.svg" in names
