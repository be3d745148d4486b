"""Commands that build a venue (virtualenv) from shipped wheels, beside the old one."""

from backstage.commands.shell import Script, argv
from backstage.commands.stage import PIP_QUIET, unpack_wheels
from backstage.model import Layout

COMPLETE_MARKER = ".backstage-complete"
# uv never fetches an interpreter or anything else: hosts may have no network.
UV_QUIET = ("--quiet", "--offline", "--no-python-downloads")


def requirements_file(layout: Layout, digest: str) -> str:
    return f"{layout.wheelhouse}/requirements-{digest}.txt"


def build_venue(script: Script, layout: Layout, venue: str, digest: str, python: str) -> Script:
    """Unpack wheels (stdin), build ``venues/<venue>-<digest>`` offline, then switch the link.

    With ``uv`` on the host's PATH, ``uv venv`` and ``uv pip install`` build it; else the
    interpreter's ``venv`` and pip. Either way only from the shipped wheels (``--no-index``).
    A virtualenv cannot be moved after it is made (its scripts hold absolute paths), so it is
    built at its final, digest-named path; it counts as built only once the marker file is
    written last, and the ``venues/<venue>`` link moves to it in one rename.
    """
    target = layout.venue_dir(venue, digest)
    requirements = requirements_file(layout, digest)
    script.step("venue")
    unpack_wheels(script, layout)
    script.remove(target)
    with_uv = [
        argv("uv", "venv", *UV_QUIET, "--python", python, target),
        argv("uv", "pip", "install", *UV_QUIET, "--link-mode", "copy", "--python",
             f"{target}/bin/python", "--no-index", "--find-links", layout.wheelhouse,
             "-r", requirements),
    ]
    with_pip = [
        argv(python, "-m", "venv", target),
        argv(f"{target}/bin/pip", "install", *PIP_QUIET, "--no-index",
             "--find-links", layout.wheelhouse, "-r", requirements),
    ]
    script.raw(f"if command -v uv >/dev/null; then {'; '.join(with_uv)}; "
               f"else {'; '.join(with_pip)}; fi")
    script.run("touch", f"{target}/{COMPLETE_MARKER}")
    return script.link(f"{venue}-{digest}", layout.venue_link(venue))
