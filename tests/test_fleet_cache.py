"""The cache of the fleet's root filesystems (:func:`backstage.sandbox.images.cached`), which both
the systemd hosts' images and the namespace hosts' userlands are built by: no root, no debootstrap
(the build is a stand-in function)."""

import threading

import pytest

from backstage.sandbox import images
from backstage.sandbox.images import DONE, Image, ImageError, cached


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(images.CACHE_ENV, str(tmp_path))
    return tmp_path


def test_a_folder_is_built_once_and_then_found(cache):
    calls = []

    def build(tmp):
        calls.append(tmp.name)
        (tmp / "rootfs").mkdir()

    first = cached("userland-trixie-abc", build)
    assert first == cache / "userland-trixie-abc" and (first / "rootfs").is_dir()
    assert (first / DONE).read_text() == "userland-trixie-abc\n"
    assert cached("userland-trixie-abc", build) == first
    assert calls == ["userland-trixie-abc.tmp"]
    assert not (cache / "userland-trixie-abc.tmp").exists()


def test_a_failed_build_leaves_nothing_that_counts_as_built_and_is_built_again(cache):
    def broken(tmp):
        (tmp / "rootfs").mkdir()
        raise ImageError("debootstrap trixie failed (exit 1)")

    with pytest.raises(ImageError):
        cached("trixie-123", broken)
    assert not (cache / "trixie-123").exists()
    folder = cached("trixie-123", lambda tmp: (tmp / "rootfs").mkdir())
    assert (folder / "rootfs").is_dir() and (folder / DONE).exists()


def test_concurrent_runs_build_once(cache):
    calls = []

    def slow(tmp):
        calls.append(1)
        threading.Event().wait(0.3)  # the others reach the lock meanwhile

    threads = [threading.Thread(target=cached, args=("bookworm-1", slow)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and (cache / "bookworm-1" / DONE).exists()


def test_an_image_is_named_by_its_release_and_package_lists():
    trixie = Image("trixie")
    assert trixie.key.startswith("trixie-") and "gcc" in trixie.repository
    assert "libpython3.13" in trixie.repository and "python3-dev" in trixie.repository
    assert Image("trixie", repository=("nginx",)).key != trixie.key
    assert Image("bookworm").key != trixie.key
