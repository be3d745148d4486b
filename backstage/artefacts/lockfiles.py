"""Requirements as projects keep them, read as a requirements file: lockfiles and pyproject.

A venue's ``requirements`` may name, besides a requirements file:

- ``uv.lock`` (or the ``pyproject.toml`` beside one): exported by uv itself (``uv export
  --frozen``, nothing resolved again, no index asked), without development groups;
- ``poetry.lock`` (or the ``pyproject.toml`` beside one): its packages of the ``main`` group,
  pinned, with their markers and hashes;
- ``Pipfile.lock``: its ``default`` packages (never ``develop``), pinned, with markers and hashes;
- ``pyproject.toml`` alone: its ``[project] dependencies``, resolved by pip like a requirements
  file (its dependency groups are for development and stay out).

Each becomes the text of a requirements file (:class:`Exported`), which the workstation
builds into wheels like any other (:mod:`backstage.artefacts.requirements`). Bad input is one
line naming the file.
"""

import json
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from backstage.errors import InventoryError

LOCKFILES = ("uv.lock", "poetry.lock", "Pipfile.lock")


@dataclass(frozen=True)
class Exported:
    """A requirements text made from a project's own files."""

    text: str
    sources: tuple[Path, ...]  # the files it was made from (what the wheels are built from)
    cwd: Path  # what relative paths in it are relative to


def export(path: Path) -> Exported | None:
    """The requirements a lockfile or ``pyproject.toml`` says; None for a requirements file."""
    if path.name == "pyproject.toml":
        lock = next((path.parent / name for name in LOCKFILES[:2]
                     if (path.parent / name).is_file()), None)
        return export(lock) if lock else from_pyproject(path)
    reader = {"uv.lock": from_uv, "poetry.lock": from_poetry,
              "Pipfile.lock": from_pipfile}.get(path.name)
    return reader(path) if reader else None


def from_uv(lock: Path) -> Exported:
    """``uv export`` of the lock as it is (``--frozen``), without development groups or the
    project itself (its code is the act's release, not a package of its venue)."""
    uv = uv_binary(lock)
    done = subprocess.run(
        [uv, "export", "--frozen", "--offline", "--no-dev", "--no-emit-project", "--no-header",
         "--format", "requirements-txt", "--project", str(lock.parent)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise InventoryError(lock, None, f"uv export failed: {reason}")
    sources = [lock] + [p for p in [lock.parent / "pyproject.toml"] if p.is_file()]
    return Exported(done.stdout, tuple(sources), lock.parent)


def uv_binary(lock: Path) -> str:
    """uv from the PATH, or from the ``uv`` package installed beside Backstage."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise InventoryError(lock, None, "reading a uv lock needs uv on this workstation "
                             "(pip install uv)") from None


def from_poetry(lock: Path) -> Exported:
    """The packages of Poetry's ``main`` group: ``groups`` (Poetry 2) or ``category`` (before),
    optional ones (extras) left out."""
    data = read_toml(lock)
    lines = []
    for package in data.get("package", []):
        groups = package.get("groups") or [package.get("category", "main")]
        if "main" not in groups or package.get("optional", False):
            continue
        markers = package.get("markers")
        if isinstance(markers, dict):
            markers = markers.get("main")
        hashes = [f["hash"] for f in package.get("files", []) if "hash" in f]
        lines.append(pinned(lock, package.get("name"), package.get("version"), markers, hashes))
    return Exported("".join(lines), (lock,), lock.parent)


def from_pipfile(lock: Path) -> Exported:
    """Pipenv's ``default`` packages (``develop`` is for development)."""
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        default = data["default"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InventoryError(lock, None, f"not a Pipfile.lock: {exc}") from None
    lines = []
    for name, entry in sorted(default.items()):
        version = str(entry.get("version", "")).removeprefix("==")
        if not version:
            raise InventoryError(lock, f"default.{name}", "only pinned versions are supported "
                                 "(no path, VCS or file entries)")
        hashes = [h.removeprefix("sha256:") for h in entry.get("hashes", [])]
        lines.append(pinned(lock, name, version, entry.get("markers"), hashes))
    return Exported("".join(lines), (lock,), lock.parent)


def from_pyproject(path: Path) -> Exported:
    """``[project] dependencies``, as pip resolves a requirements file."""
    dependencies = read_toml(path).get("project", {}).get("dependencies")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise InventoryError(path, "project.dependencies", "a list of requirements is needed "
                             "(or a uv.lock or poetry.lock beside it)")
    return Exported("".join(f"{d}\n" for d in dependencies), (path,), path.parent)


def pinned(lock: Path, name, version, markers, hashes: list[str]) -> str:
    """``name==version ; markers --hash=sha256:...``: one line of a requirements file."""
    if not isinstance(name, str) or not isinstance(version, str):
        raise InventoryError(lock, None, f"a package without name or version: {name!r}")
    line = f"{name}=={version}" + (f" ; {markers}" if markers else "")
    return " ".join([line, *(f"--hash=sha256:{h.removeprefix('sha256:')}" for h in hashes)]) + "\n"


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(path, None, f"invalid TOML: {exc}") from None
