"""A venue's requirements resolved once, then the wheels each host platform installs.

1. :func:`resolve_pins`, once per input on the workstation: pip resolves the requirements file
   (``pip install --dry-run --report``: its includes, constraints and options apply, and sdists
   only give their metadata, nothing is compiled) into pins, ``name==version``. Editable, VCS,
   URL and path requirements are built into wheels here (``pip wheel --no-deps``).
2. :meth:`Pins.for_platform`, once per distinct host platform (see
   :mod:`backstage.artefacts.platforms`): each pin becomes one wheel that platform accepts: the
   one built here when it is portable, else the index's wheel for the platform (``pip download
   --platform ... --only-binary=:all:``), else its sdist, compiled once on a *builder* host of
   that platform (the caller's ``build``), cached here by platform and sdist hash. The result
   is the platform's lock (:class:`~backstage.artefacts.requirements.Resolved`): exact versions
   and each wheel's hash, shipped with the wheels so the host installs exactly that, offline.
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from backstage.artefacts import lockfiles, requirements, wheelhouse
from backstage.artefacts.platforms import Platform
from backstage.errors import BackstageError

# Building an sdist whose pyproject.toml names no backend (PEP 517's default).
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


class Unservable(BackstageError):
    """A pin has no wheel for a platform and no builder of that platform can compile it."""


@dataclass(frozen=True)
class SourceBuild:
    """An sdist to compile on a builder host of ``platform``, with the wheels of its build
    requirements for that platform (hosts have no index)."""

    name: str
    version: str
    sdist: Path
    build_wheels: tuple[Path, ...]
    requires: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sdist.read_bytes()).hexdigest()

    def payload(self) -> bytes:
        """A tar of the sdist and the build requirements' wheels, for the builder's stdin."""
        return wheelhouse.pack([self.sdist, *self.build_wheels])


# (platform, what to build) -> the built wheel's bytes and file name.
Builder = Callable[[Platform, SourceBuild], tuple[str, bytes]]


@dataclass(frozen=True)
class Pins:
    """What a requirements file resolved to: exact versions, and wheels built here for its
    editable, VCS, URL and path requirements."""

    label: str
    index: tuple[tuple[str, str], ...]  # (name, version) of pins from an index
    direct: tuple[Path, ...] = ()  # wheels built on the workstation
    cwd: Path | None = None  # where pip reads the requirements' options (an index URL, say)
    options: tuple[str, ...] = field(default=())  # pip options of the file (index, find-links)

    def for_platform(self, platform: Platform, build: Builder | None) -> requirements.Resolved:
        """The wheels ``platform`` installs, and their lock; ``build`` compiles an sdist on a
        builder of the platform (None: no builder can; a source-only pin is then an error)."""
        for wheel in self.direct:
            if not platform.accepts(wheel.name):
                raise Unservable(f"{wheel.name}: built on this workstation for its own platform, "
                                 f"which {platform} does not accept (only index packages are "
                                 "built on builder hosts)")
        wheels = list(self.direct)
        found = platform_wheels(self.index, platform, self.options, self.cwd)
        for name, version in self.index:
            wheel = found.get(canonicalize_name(name))
            if wheel is None:
                if build is None:
                    raise Unservable(f"{name} {version}: no wheel for {platform}, and no builder "
                                     "host of that platform has a C compiler and Python headers")
                wheel = built_wheel(platform, source_build(name, version, platform, self.options,
                                                           self.cwd), build)
            wheels.append(wheel)
        for wheel in wheels:  # the guarantee, whatever pip or a builder handed back
            if not platform.accepts(wheel.name, portable_only=not is_built(wheel)):
                raise Unservable(f"{wheel.name}: not a wheel {platform} installs")
        return requirements.Resolved(tuple(wheels), requirements.resolved_list(wheels))


def platform_dir(platform: Platform) -> Path:
    return wheelhouse.cache_dir() / "platforms" / platform.key


def is_built(wheel: Path) -> bool:
    """A wheel compiled by a builder host (under ``built/`` of the platform's cache)."""
    return wheel.parent.parent.name == "built"


def pip(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, check=False, cwd=cwd)


def platform_wheels(pins, platform: Platform, options, cwd) -> dict[str, Path]:
    """Canonical name -> the cached wheel of each pin the index has for ``platform``,
    downloading the missing ones (one pip run, then one per pin if that fails: pip stops at
    the first pin without a wheel). Pins without one are left out; a note in the cache says so,
    so they are not asked for again."""
    folder = platform_dir(platform) / "wheels"
    folder.mkdir(parents=True, exist_ok=True)

    def cached(name, version):
        for wheel in folder.glob("*.whl"):
            found, found_version, _, _ = parse_wheel_filename(wheel.name)
            if found == canonicalize_name(name) and str(found_version) == version \
                    and platform.accepts(wheel.name):
                return wheel
        return None

    def no_wheel(name, version):  # per index options: another index may have one
        where = hashlib.sha256(repr(options).encode()).hexdigest()[:8]
        return folder / f".no-wheel-{canonicalize_name(name)}-{version}-{where}"

    missing = [(n, v) for n, v in pins if cached(n, v) is None and not no_wheel(n, v).exists()]
    if missing and not download(missing, platform, options, cwd, folder):
        for name, version in missing:
            if not download([(name, version)], platform, options, cwd, folder):
                no_wheel(name, version).touch()
    return {canonicalize_name(n): w for n, v in pins if (w := cached(n, v)) is not None}


def download(pins, platform: Platform, options, cwd, folder: Path) -> bool:
    with tempfile.TemporaryDirectory(dir=folder.parent) as incoming:
        done = pip(["download", "--quiet", "--no-deps", *platform.pip_download_args(), *options,
                    "--dest", incoming, *(f"{n}=={v}" for n, v in pins)], cwd)
        if done.returncode != 0:
            return False
        for wheel in Path(incoming).glob("*.whl"):
            os.replace(wheel, folder / wheel.name)
    return True


def source_build(name: str, version: str, platform: Platform, options, cwd) -> SourceBuild:
    """The sdist of a pin and the wheels its build needs on ``platform``."""
    folder = platform_dir(platform).parent / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    sdist = next((p for p in folder.iterdir() if is_sdist_of(p.name, name, version)), None)
    if sdist is None:
        with tempfile.TemporaryDirectory(dir=folder) as incoming:
            done = pip(["download", "--quiet", "--no-deps", "--no-binary=:all:", *options,
                        "--dest", incoming, f"{name}=={version}"], cwd)
            if done.returncode != 0:
                raise Unservable(f"{name} {version}: no wheel for {platform} and no source "
                                 f"distribution: {wheelhouse.pip_reason(done.stderr)}")
            [found] = Path(incoming).iterdir()
            os.replace(found, folder / found.name)
            sdist = folder / found.name
    requires = build_requires(sdist)
    target = platform_dir(platform) / "build-requires" / hashlib.sha256(
        "\n".join(requires).encode()).hexdigest()[:12]
    if requires and not target.exists():
        with tempfile.TemporaryDirectory(dir=platform_dir(platform)) as incoming:
            done = pip(["download", "--quiet", *platform.pip_download_args(), *options,
                        "--dest", incoming, *requires], cwd)
            if done.returncode != 0:
                raise Unservable(f"{name} {version}: its build requirements "
                                 f"({', '.join(requires)}) have no wheels for {platform}: "
                                 f"{wheelhouse.pip_reason(done.stderr)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming, target)
            os.mkdir(incoming)  # for TemporaryDirectory's cleanup
    return SourceBuild(name, version, sdist, tuple(sorted(target.glob("*.whl"))), requires)


def is_sdist_of(filename: str, name: str, version: str) -> bool:
    try:
        found, found_version = parse_sdist_filename(filename)
    except ValueError:
        return False
    return found == canonicalize_name(name) and str(found_version) == version


def build_requires(sdist: Path) -> tuple[str, ...]:
    """``[build-system] requires`` of the sdist's pyproject.toml, else PEP 517's default (with
    ``wheel``, which setuptools' legacy builds ask for)."""
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers()
                       if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")), None)
        text = tar.extractfile(member).read().decode() if member else ""
    requires = tomllib.loads(text).get("build-system", {}).get("requires") if text else None
    return tuple(requires if requires is not None else DEFAULT_BUILD_REQUIRES)


def built_wheel(platform: Platform, source: SourceBuild, build: Builder) -> Path:
    """The wheel of an sdist built for ``platform``: from the cache (by platform and sdist
    hash), else compiled by ``build`` on a builder host and kept."""
    target = platform_dir(platform) / "built" / source.sha256[:16]
    done = target / wheelhouse.DONE_MARKER
    if not done.exists():
        name, data = build(platform, source)
        parsed = parse_wheel_filename(name)
        if parsed[0] != canonicalize_name(source.name) or "/" in name:
            raise BackstageError(f"building {source.name} {source.version} for {platform} "
                                 f"gave {name!r}")
        target.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
        done.touch()
    return next(target.glob("*.whl"))


def resolve_pins(requirements_file: Path | None, extra: tuple[str, ...] = ()) -> Pins:
    """Resolve a requirements file (and ``extra`` requirements) once per input, on the
    workstation; bad input is one line naming the file (and line), exit code 2."""
    inputs, top = requirements.Inputs(), requirements_file
    # A lockfile or pyproject.toml is read as the requirements file it exports (its project's
    # folder is where pip runs): see backstage.artefacts.lockfiles.
    exported = lockfiles.export(requirements_file) if requirements_file else None
    if exported is not None:
        inputs = requirements.Inputs(files=list(exported.sources), cwd=exported.cwd)
        top = requirements.exported_file(exported.text)
    if top is not None:
        requirements.read(top, inputs)
    arguments = [*(["-r", str(top)] if top else []), *extra]
    label = str(requirements_file) if requirements_file else " ".join(extra)
    cwd = inputs.cwd or (requirements_file.parent if requirements_file else None)
    report_file = wheelhouse.cache_dir() / "pins" / f"{inputs.key(extra)}.json"
    if not report_file.exists():
        report_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as work:
            done = pip(["install", "--dry-run", "--ignore-installed", "--quiet", "--use-pep517",
                        "--report", f"{work}/report.json", *arguments], cwd)
            if done.returncode != 0:
                failure = wheelhouse.BuildFailed(label, wheelhouse.pip_reason(done.stderr))
                raise requirements.blame(inputs, failure) from None
            os.replace(f"{work}/report.json", report_file)
    report = json.loads(report_file.read_text())["install"]
    index = tuple((i["metadata"]["name"], i["metadata"]["version"])
                  for i in report if not i.get("is_direct"))
    direct = ()
    if inputs.direct:
        words = [w for _, item in inputs.direct for w in item]
        try:
            direct = tuple(wheelhouse.build(["--no-deps", *words], inputs.key(extra) + "-direct",
                                            label, cwd))
        except wheelhouse.BuildFailed as exc:
            raise requirements.blame(inputs, exc) from None
    return Pins(label, tuple(sorted(index)), direct, cwd, index_options(inputs))


def index_options(inputs: requirements.Inputs) -> tuple[str, ...]:
    """The requirements files' index options (``--index-url``, ``--extra-index-url``,
    ``--find-links``, ``--trusted-host``), for pip's downloads of single pins."""
    found = []
    for path in inputs.files:
        for line in requirements.logical_lines(path):
            if line.text.split()[0] == "--no-index":
                found.append("--no-index")
            elif line.text.startswith(INDEX_OPTIONS):
                name, value = requirements.option(line)
                if value is not None:
                    if name in ("-f", "--find-links") and "://" not in value:
                        value = str((path.parent / value).resolve())
                    found += [name, value]
    return tuple(found)


INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                 "--trusted-host")

