"""A venue's requirements, resolved on the workstation: hosts never read a requirements file.

pip reads the requirements file here, with its includes (``-r``), constraints (``-c``) and
options (``--index-url``, ``--find-links``...), and builds every wheel the venue needs into the
workstation's cache (:func:`backstage.artefacts.wheelhouse.build`). What a host receives is the
*resolved list*: one line ``name==version --hash=sha256:...`` per wheel built, sorted, with no
option and no include; it installs exactly that from the shipped wheels (``--no-index
--require-hashes``). A venue's digest is a hash of that list, so a change in an included file
changes the venue and a comment does not.

Wheels are built once per *input*: the text of every file read (the top one, its includes and
constraints) and the content of the local folders it names (``-e ./lib``, ``./lib``), so a
change to any of them builds again. Editable, VCS and URL requirements are built into plain
wheels here; one that cannot be is refused naming its file and line.

A lockfile or a ``pyproject.toml`` is first made into the text of a requirements file
(:mod:`backstage.artefacts.lockfiles`), kept in the workstation's cache; the files it was
made from are the inputs.
"""

import hashlib
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from backstage.artefacts import lockfiles, wheelhouse
from backstage.artefacts.bundle import manifest, source_files
from backstage.errors import BackstageError, InventoryError
from backstage.remote.core import file_digest, manifest_digest

INCLUDES = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
EDITABLE = ("-e", "--editable")
# What building a local project leaves in it; not part of what the project is.
BUILD_LEFTOVERS = ("build", "dist")


@dataclass(frozen=True)
class Line:
    """A logical line of a requirements file (continuations joined, comment removed)."""

    path: Path
    number: int
    text: str

    def fail(self, reason: str) -> InventoryError:
        return InventoryError(self.path, f"line {self.number}", f"{self.text}: {reason}")


@dataclass
class Inputs:
    """What a requirements file and its includes say, as far as Backstage must know it."""

    files: list[Path] = field(default_factory=list)  # every file read, in the order read
    cwd: Path | None = None  # where pip runs: the top file's folder, or the project's
    # Editable, VCS, URL and path requirements, with the words that build one alone.
    direct: list[tuple[Line, list[str]]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # local projects they name
    names: set[str] = field(default_factory=set)  # canonical names required (not constraints)

    def key(self, extra: tuple[str, ...]) -> str:
        """What the wheels are built from: file texts, local projects' content, ``extra``."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(f"file {file_digest(str(path))}\n".encode())
        for folder in self.folders:
            digest.update(f"project {project_digest(folder)}\n".encode())
        digest.update(f"extra {extra!r}\n".encode())
        return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Resolved:
    """The wheels of a venue and the option-free list a host installs them from."""

    wheels: tuple[Path, ...]
    text: str

    @property
    def hashes(self) -> dict[str, str]:
        """Wheel file name -> sha256 of its content."""
        return {w.name: file_digest(str(w)) for w in self.wheels}

    def digest(self, python: str) -> str:
        return wheelhouse.venue_digest(python, self.text)


def logical_lines(path: Path) -> list[Line]:
    """pip's reading: ``\\`` joins a line to the next; ``#`` at the start or after
    whitespace starts a comment; blank lines go."""
    try:
        raw = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path, None, f"cannot read requirements file: {exc}") from None
    lines, pending, start = [], "", 0
    for number, text in enumerate(raw, 1):
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1]
            continue
        text = without_comment(pending + text).strip()
        pending = ""
        if text:
            lines.append(Line(path, start, text))
    if pending.strip():
        lines.append(Line(path, start, without_comment(pending).strip()))
    return lines


def without_comment(text: str) -> str:
    for index, char in enumerate(text):
        if char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index]
    return text


def option(line: Line) -> tuple[str, str | None]:
    """``-r base.txt``, ``-rbase.txt``, ``--requirement=base.txt`` -> ``("-r", "base.txt")``."""
    try:
        words = shlex.split(line.text)
    except ValueError as exc:
        raise line.fail(str(exc)) from None
    first, following = words[0], (words[1] if len(words) > 1 else None)
    if first.startswith("--"):
        name, equals, value = first.partition("=")
        return name, value if equals else following
    return first[:2], first[2:] or following


def read(path: Path, inputs: Inputs | None = None, constraint: bool = False) -> Inputs:
    """Follow a requirements file and its includes, as pip will."""
    inputs = inputs if inputs is not None else Inputs()
    if path.resolve() in (p.resolve() for p in inputs.files):
        return inputs
    inputs.files.append(path)
    inputs.cwd = inputs.cwd or path.parent
    for line in logical_lines(path):
        if not line.text.startswith("-"):
            requirement(line, inputs, constraint)
            continue
        name, value = option(line)
        if name in INCLUDES:
            read(included(line, value), inputs, constraint or INCLUDES[name])
        elif name in EDITABLE:
            direct(line, value, inputs, ["-e", value or ""])
    return inputs


def included(line: Line, value: str | None) -> Path:
    if not value:
        raise line.fail("names no file")
    if "://" in value:
        raise line.fail("includes must be local files (Backstage hashes what it builds from)")
    target = line.path.parent / value
    if not target.is_file():
        raise line.fail(f"no such file: {target}")
    return target


def requirement(line: Line, inputs: Inputs, constraint: bool) -> None:
    """A requirement line: a name with versions, or (direct) a path or URL; options after it
    (``--hash``, ``--config-settings``) aside, as pip splits them."""
    words = line.text.split(" ")
    spec = " ".join(w for w in words[:next((i for i, w in enumerate(words) if w.startswith("-")),
                                            len(words))])
    try:
        parsed = Requirement(spec)
    except InvalidRequirement:
        return direct(line, spec, inputs, [spec])
    if parsed.url:
        return direct(line, parsed.url, inputs, [spec])
    if not constraint:
        inputs.names.add(canonicalize_name(parsed.name))


def direct(line: Line, target: str | None, inputs: Inputs, words: list[str]) -> None:
    """Editable, VCS, URL and path requirements; a local project's content is an input."""
    if not target:
        raise line.fail("names no project")
    inputs.direct.append((line, words))
    local = target.removeprefix("file://").split("#", 1)[0].split("[", 1)[0]
    if "://" in local or local.startswith(("git+", "hg+", "svn+", "bzr+")):
        return
    # pip reads paths relative to its working directory (see resolve).
    folder = inputs.cwd / local
    if folder.is_dir():
        inputs.folders.append(folder)


def project_digest(folder: Path) -> str:
    """The content of a local project, without what building it leaves behind."""
    files = [p for p in source_files(folder)
             if p.relative_to(folder).parts[0] not in BUILD_LEFTOVERS
             and not any(part.endswith(".egg-info") for part in p.relative_to(folder).parts)]
    return manifest_digest(manifest(folder, files))


def resolved_list(wheels: list[Path]) -> str:
    """``name==version --hash=sha256:...`` per wheel, sorted by name: what a host installs."""
    lines = []
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        lines.append(f"{name}=={version} --hash=sha256:{file_digest(str(wheel))}")
    return "".join(f"{line}\n" for line in sorted(lines))


def resolve(requirements: Path | None, extra: tuple[str, ...] = ()) -> Resolved:
    """Build the wheels of a requirements file (or a lockfile, or a ``pyproject.toml``: see
    :mod:`backstage.artefacts.lockfiles`) and ``extra`` requirements on this workstation, once
    per input, and the list a host installs them from.

    pip runs in the file's folder (the project's, for a lockfile), so relative paths in it are
    relative to that. Bad input is one line naming the file (and line), exit code 2.
    """
    inputs, top = Inputs(), requirements
    exported = lockfiles.export(requirements) if requirements is not None else None
    if exported is not None:
        inputs = Inputs(files=list(exported.sources), cwd=exported.cwd)
        top = exported_file(exported.text)
    if top is not None:
        read(top, inputs)
    arguments = [*(["-r", str(top)] if top is not None else []), *extra]
    label = str(requirements) if requirements is not None else " ".join(extra)
    try:
        wheels = wheelhouse.build(arguments, inputs.key(extra), label, inputs.cwd)
    except wheelhouse.BuildFailed as exc:
        raise blame(inputs, exc) from None
    return Resolved(tuple(wheels), resolved_list(wheels))


def exported_file(text: str) -> Path:
    """A requirements file holding ``text``, in the workstation's cache (never in the
    project), named by its content."""
    name = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = wheelhouse.cache_dir() / "exported" / f"{name}.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(path)
    return path


def blame(inputs: Inputs, failure: "wheelhouse.BuildFailed") -> BackstageError:
    """The line that failed the build: the first editable, VCS or URL requirement that cannot
    be built alone, else the file as a whole."""
    for line, words in inputs.direct:
        with tempfile.TemporaryDirectory() as folder:
            try:
                wheelhouse.pip_wheel(["--no-deps", *words], Path(folder), inputs.cwd)
            except wheelhouse.BuildFailed as exc:
                return line.fail(f"cannot be built into a wheel on this workstation: {exc.tail}")
    if not inputs.files:
        return failure
    return InventoryError(inputs.files[0], None, f"building its wheels failed: {failure.tail}")
