"""What a deploy plan changes on a host, in terms a person reads: ``plan`` and ``--dry-run``
print these, with unified diffs of the files against what the host has."""

import difflib
from dataclasses import dataclass, field


@dataclass
class FileChange:
    """A file the deploy writes: its path, its new text, and the file on the host it takes
    over from (the same path for a gig, the live release's vassal for a new vassal)."""

    path: str
    text: str
    replaces: str | None = None


@dataclass
class Changes:
    venue: str | None = None  # the venue directory the deploy builds, if any
    files: list[FileChange] = field(default_factory=list)
    env: bool = False  # the env file differs from the live release's (content never shown)
    retired: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    repair: list[str] = field(default_factory=list)  # what is wrong with the live release
    removed: list[str] = field(default_factory=list)  # leftovers and unused venues (cleanup)
    settings: str | None = None  # what the settings overlay sets (model.django)

    @property
    def replaced(self) -> list[str]:
        """Files on the host whose text a diff needs."""
        return [f.replaces for f in self.files if f.replaces]


def unified_diff(old: str | None, change: FileChange) -> str:
    """A diff from the host's file (or nothing) to the new text."""
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True), change.text.splitlines(keepends=True),
        fromfile=change.replaces or "/dev/null", tofile=change.path)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)
