"""Commands for least privilege in the system layout: act users, their files, running as them.

Each act runs as its own unix user (``RunAs``): a system account with no login shell and no
password, in the production's group, which may write ``data/``. Root keeps the code (releases,
venues, the stage); the act user owns only its state: its env files, ``media/``, its sqlite
files, its working directory and its stats sockets' folder. nginx reaches sockets and media
through its group. No folder root writes, binds or chowns in is writable by an act: where root
must change an act's file (its sqlite files), it does so through a descriptor opened without
following links. The README's least-privilege table says who reads what.
"""

from backstage.commands import hostside
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, RunAs

ACT_UMASK = "027"
NO_SHELL = "/usr/sbin/nologin"


def create_group(script: Script, group: str) -> Script:
    return script.raw(f"getent group {q(group)} >/dev/null || {argv('groupadd', '--system', group)}")


def create_user(script: Script, user: str, group: str) -> Script:
    """A system account with its own group, no home, no shell, no password; in ``group``."""
    script.raw(f"id -u {q(user)} >/dev/null 2>&1 || " + argv(
        "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
        "--shell", NO_SHELL, user))
    return script.run("usermod", "--append", "--groups", group, user)


def stage_modes(layout: Layout, group: str) -> dict[str, str]:
    """``owner:group:mode`` of each of the stage's folders (what the probe reports).

    Other local users may only pass through the folders nginx's workers must cross (the
    root, ``acts/``, ``run/``). The production's acts read the stage (uWSGI re-executes
    itself from it on a reload), the vassal files and the venues; they create their sqlite
    files in ``data/``, where the sticky bit keeps each from removing another's and their
    umask from reading another's. Trees, wheels, logs, the history and the database
    snapshots are root's alone.
    """
    return {
        layout.root: "root:root:711",
        layout.stage: f"root:{group}:750",
        layout.wheelhouse: "root:root:700",
        layout.venues: f"root:{group}:750",
        layout.acts: "root:root:711",
        layout.trees: "root:root:700",
        layout.data: f"root:{group}:1770",
        layout.run: "root:root:711",
        layout.vassals: f"root:{group}:750",
        layout.log: "root:root:700",
        layout.state: "root:root:700",
        layout.backups: "root:root:700",
    }


def own_stage(script: Script, modes: dict[str, str]) -> Script:
    """Give the stage's folders (root's, made before any act runs) their owners and modes."""
    for path, spec in modes.items():
        user, group, mode = spec.split(":")
        script.run("install", "-d", "-o", user, "-g", group, "-m", mode, path)
    return script


def own_act_state(script: Script, layout: Layout, python: str, act: str, release: str,
                  run_as: RunAs, group: str, sqlite_files: list[str]) -> Script:
    """Give the act user its state (and nothing else) before anything of the release runs.

    The act owns its folder ``shared/``, ``media/`` (setgid nginx's group, so nginx reads uploads), its stats
    sockets' folder and its env files. Root writes the env files in ``env/`` and binds the
    release's socket in ``run/<act>/``, folders of its own, never in one the act could plant a
    link in. The release's code is the production's ``group``'s to read (acts of one
    repository share its files), nobody else's; nginx's workers pass through the release to
    its collected static files.
    """
    script.step("ownership")
    user, nginx = run_as.user, run_as.nginx_group
    script.run("install", "-d", "-o", "root", "-g", "root", "-m", "0711", layout.act_dir(act),
               layout.releases(act), layout.env_dir(act))
    script.run("install", "-d", "-o", user, "-g", run_as.group, "-m", "0750", layout.shared(act))
    script.run("install", "-d", "-o", "root", "-g", nginx, "-m", "0750", layout.socket_dir(act))
    # Links the act could plant there while the folder was its own (older Backstage).
    script.run("find", layout.socket_dir(act), "-mindepth", "1", "-maxdepth", "1", "-type", "l",
               "-delete")
    script.run("install", "-d", "-o", user, "-g", run_as.group, "-m", "0700",
               layout.stats_dir(act))
    script.run("install", "-d", "-o", user, "-g", nginx, "-m", "2750", layout.media(act))
    # data/ is the production's group's to write: another act may have made data/<act> first.
    script.raw(hostside(layout, python, "own_folder", {"path": layout.act_data(act),
                                                       "user": user, "group": run_as.group}))
    script.run("chown", "--no-dereference", f"{user}:{run_as.group}",
               layout.env_file(act, release))
    release_dir = layout.release(act, release)
    script.run("chgrp", "-R", "--no-dereference", group, release_dir)
    script.run("chmod", "-R", "o-rwx", release_dir)
    script.run("chmod", "0751", release_dir)
    if sqlite_files:
        names = [f"{path}{suffix}" for path in sqlite_files
                 for suffix in ("", "-journal", "-wal", "-shm")]
        script.raw(hostside(layout, python, "own", {"paths": names, "user": user,
                                                    "group": run_as.group}))
    return script


def open_static(script: Script, layout: Layout, act: str, release: str,
                run_as: RunAs) -> Script:
    """Let ``collectstatic``, run as the act user, fill a new folder of the release..."""
    return script.run("install", "-d", "-o", run_as.user, "-g", run_as.group, "-m", "0750",
                      layout.static(act, release))


def seal_static(script: Script, layout: Layout, act: str, release: str,
                run_as: RunAs) -> Script:
    """...then replace it with root's copy, readable by all (nginx serves it).

    Root never changes or walks the act's folder, which the act may still write into (its live
    release runs as the same user): it renames it (in the release, root's), lets the act tar
    it and unpacks that into a new folder of its own, keeping only files and folders.
    """
    static = layout.static(act, release)
    collected = f"{static}.collected"
    script.run("mv", "-T", static, collected)
    script.run("install", "-d", "-o", "root", "-g", "root", "-m", "0755", static)
    script.raw(f"{as_user(run_as, argv('tar', '-C', collected, '-cf', '-', '.'))} | "
               + argv("tar", "-C", static, "-xf", "-", "--no-same-owner",
                      "--no-same-permissions"))
    script.run("find", static, "-mindepth", "1", "!", "-type", "f", "!", "-type", "d", "-delete")
    script.run("chmod", "-R", "u=rwX,go=rX", static)
    # GNU rm removes entries, never following a link, whatever the act does meanwhile.
    return script.run("rm", "-rf", "--", collected)


def as_user(run_as: RunAs, body: str) -> str:
    """Shell text running ``body`` (which may use ``"$@"``) in bash as the act user, with the
    act's umask, a fresh environment and the user's groups (the production's included)."""
    return argv("setpriv", "--reuid", run_as.user, "--regid", run_as.group, "--init-groups",
                "--reset-env", "--", "bash", "-c", f"umask {ACT_UMASK} && {body}", "manage") \
        + ' "$@"'
