"""Compile an sdist into a wheel on a builder host (a package with no wheel for its platform).

The workstation sends a tar of the sdist and the wheels of its build requirements on stdin;
the host builds in a fresh virtualenv from those only (``--no-index``: hosts never reach an
index) and prints the wheel as a base64 tar on stdout. Everything happens in a temporary
folder removed at the end. As root, the build runs as ``nobody`` (an sdist's build runs its
own code), which may write only that folder.
"""

from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import PIP_QUIET

BUILD_USER, BUILD_GROUP = "nobody", "nogroup"


def build_wheel(python: str, sdist: str, requires: list[str]) -> str:
    """The command that builds ``sdist`` (a file name in the tar on stdin) with ``python``."""
    script = Script().step("build")
    script.raw('work=$(mktemp -d "${TMPDIR:-/tmp}/backstage-build-XXXXXX")')
    script.raw("trap 'rm -rf -- \"$work\"' EXIT")
    script.raw('mkdir "$work/in" "$work/out" && tar -xf - -C "$work/in" --no-same-owner')
    script.raw('as=""')
    script.raw('if [ "$(id -u)" = 0 ]; then chown -R '
               + q(f"{BUILD_USER}:{BUILD_GROUP}") + ' "$work"; as='
               + q(argv("setpriv", f"--reuid={BUILD_USER}", f"--regid={BUILD_GROUP}",
                        "--clear-groups", "--")) + "; fi")
    env = 'env HOME="$work" TMPDIR="$work" PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/dev/null'
    script.raw(f'$as {env} {argv(python, "-m", "venv")} "$work/env"')
    pip = f'$as {env} "$work/env/bin/pip"'
    if requires:
        script.raw(f'{pip} install {argv(*PIP_QUIET, "--no-index")} --find-links "$work/in" '
                   + argv(*requires))
    script.raw(f'{pip} wheel {argv(*PIP_QUIET, "--no-index", "--no-build-isolation", "--no-deps")}'
               f' --wheel-dir "$work/out" "$work/in/"{q(sdist)} >&2')
    return script.raw('tar -cf - -C "$work/out" . | base64 -w0').text()
