"""Commands that build a venue (virtualenv) from shipped wheels, beside the old one."""

from backstage.commands.shell import Script
from backstage.commands.stage import PIP_QUIET, unpack_wheels
from backstage.model import Layout

COMPLETE_MARKER = ".backstage-complete"


def requirements_file(layout: Layout, digest: str) -> str:
    return f"{layout.wheelhouse}/requirements-{digest}.txt"


def build_venue(script: Script, layout: Layout, venue: str, digest: str, python: str) -> Script:
    """Unpack wheels (stdin), build ``venues/<venue>-<digest>`` offline, then switch the link.

    A virtualenv cannot be moved after it is made (its scripts hold absolute paths), so it is
    built at its final, digest-named path; it counts as built only once the marker file is
    written last, and the ``venues/<venue>`` link moves to it in one rename.
    """
    target = layout.venue_dir(venue, digest)
    script.step("venue")
    unpack_wheels(script, layout)
    script.remove(target)
    script.run(python, "-m", "venv", target)
    script.run(
        f"{target}/bin/pip", "install", *PIP_QUIET, "--no-index",
        "--find-links", layout.wheelhouse, "-r", requirements_file(layout, digest),
    )
    script.run("touch", f"{target}/{COMPLETE_MARKER}")
    return script.link(f"{venue}-{digest}", layout.venue_link(venue))
