"""Commands that build a venue (virtualenv) from shipped wheels, beside the old one."""

from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import PIP_QUIET, unpack_wheels
from backstage.model import Layout

COMPLETE_MARKER = ".backstage-complete"
# uv never fetches an interpreter or anything else: hosts may have no network.
UV_QUIET = ("--quiet", "--offline", "--no-python-downloads")
# How long a deploy waits for another act's deploy building the same venue.
BUILD_WAIT_SECONDS = 900


def requirements_file(layout: Layout, digest: str) -> str:
    return f"{layout.wheelhouse}/requirements-{digest}.txt"


def build_venue(script: Script, layout: Layout, venue: str, digest: str, python: str) -> Script:
    """Unpack wheels (stdin), build ``venues/<venue>-<digest>`` offline, then switch the link.

    With ``uv`` on the host's PATH, ``uv venv`` and ``uv pip install`` build it; else the
    interpreter's ``venv`` and pip. Either way only from the shipped wheels (``--no-index``) and
    only what the resolved list names, each wheel checked against its hash (``--require-hashes``).
    A virtualenv cannot be moved after it is made (its scripts hold absolute paths), so it is
    built at its final, digest-named path; it counts as built only once the marker file is
    written last, and the ``venues/<venue>`` link moves to it in one rename. Acts sharing the
    venue may deploy at once: the venue's build lock (``flock``) lets one build while the other
    waits, then finds it built.
    """
    target = layout.venue_dir(venue, digest)
    requirements = requirements_file(layout, digest)
    marker = f"{target}/{COMPLETE_MARKER}"
    script.step("venue")
    unpack_wheels(script, layout)
    with_uv = [
        argv("uv", "venv", *UV_QUIET, "--python", python, target),
        argv("uv", "pip", "install", *UV_QUIET, "--link-mode", "copy", "--python",
             f"{target}/bin/python", "--no-index", "--find-links", layout.wheelhouse,
             "--require-hashes", "-r", requirements),
    ]
    with_pip = [
        argv(python, "-m", "venv", target),
        argv(f"{target}/bin/pip", "install", *PIP_QUIET, "--no-index",
             "--find-links", layout.wheelhouse, "--require-hashes", "-r", requirements),
    ]
    either = (f"if command -v uv >/dev/null; then {'; '.join(with_uv)}; "
              f"else {'; '.join(with_pip)}; fi")
    build = [argv("rm", "-rf", "--", target), either, argv("touch", marker)]
    lock = layout.venue_lock(venue)
    script.mkdirs([lock.rsplit("/", 1)[0]])
    script.raw(f"exec 9>{q(lock)}")
    script.raw(f"flock -w {BUILD_WAIT_SECONDS} 9 || {{ echo "
               + q(f"venue {venue}: another deploy has been building it for "
                   f"{BUILD_WAIT_SECONDS} s") + " >&2; exit 1; }")
    script.raw(f"if [ ! -e {q(marker)} ]; then {'; '.join(build)}; fi")
    script.link(f"{venue}-{digest}", layout.venue_link(venue))
    return script.raw("exec 9>&-")
