"""Commands for least privilege in the system layout: act users, their files, running as them.

Each act runs as its own unix user (``RunAs``): a system account with no login shell and no
password, in the production's group, which may write ``data/``. Root keeps the code (releases,
venues, the stage); the act user owns only its state: its env files, ``media/``, its sqlite
files and its sockets' folder. nginx reaches sockets and media through its group.
"""

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


def own_data_dir(script: Script, layout: Layout, group: str) -> Script:
    """``data/``: the production's acts create their sqlite files there; the sticky bit keeps
    each from removing another's, and their umask keeps them from reading another's."""
    script.run("chown", f"root:{group}", layout.data)
    return script.run("chmod", "1770", layout.data)


def own_act_state(script: Script, layout: Layout, act: str, release: str, run_as: RunAs,
                  sqlite_files: list[str]) -> Script:
    """Give the act user its state (and nothing else) before anything of the release runs.

    The act owns its working directory ``shared/`` (a relative sqlite path in its settings
    lands there), ``media/`` (setgid nginx's group, so nginx reads uploads), its sockets'
    folder, its log folder (uWSGI opens and rotates the log there as the act) and its env
    files. Root writes the env files in ``env/``, a folder of its own (0711), never in one
    the act could plant a link in; chown never follows a link here.
    """
    script.step("ownership")
    user, nginx = run_as.user, f"{run_as.user}:{run_as.nginx_group}"
    script.run("install", "-d", "-o", "root", "-g", "root", "-m", "0711", layout.env_dir(act))
    script.run("install", "-d", "-o", user, "-g", run_as.group, "-m", "0750", layout.shared(act))
    # setgid: the sockets the vassal binds as the act user get nginx's group.
    script.run("install", "-d", "-o", user, "-g", run_as.nginx_group, "-m", "2750",
               layout.socket_dir(act))
    script.run("install", "-d", "-o", user, "-g", run_as.group, "-m", "0750",
               layout.log_dir(act))
    script.run("install", "-d", "-o", user, "-g", run_as.nginx_group, "-m", "2750",
               layout.media(act))
    script.run("chown", "-R", "--no-dereference", nginx, layout.media(act))
    script.run("chown", "--no-dereference", f"{user}:{run_as.group}",
               layout.env_file(act, release))
    for path in sqlite_files:
        for name in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
            script.raw(f"if [ -f {q(name)} ] && [ ! -L {q(name)} ]; then "
                       f"{argv('chown', '--no-dereference', f'{user}:{run_as.group}', name)}; "
                       f"{argv('chmod', 'o-rwx', name)}; fi")
    return script


def open_static(script: Script, layout: Layout, act: str, release: str,
                run_as: RunAs) -> Script:
    """Let ``collectstatic``, run as the act user, write the release's static folder..."""
    static = layout.static(act, release)
    script.run("mkdir", "-p", static)
    return script.run("chown", "-R", "--no-dereference", f"{run_as.user}:{run_as.group}", static)


def seal_static(script: Script, layout: Layout, act: str, release: str) -> Script:
    """...then give it back to root, readable by all (nginx serves it), writable by none else."""
    static = layout.static(act, release)
    script.run("chown", "-R", "--no-dereference", "root:root", static)
    return script.run("chmod", "-R", "u=rwX,go=rX", static)


def as_user(run_as: RunAs, body: str) -> str:
    """Shell text running ``body`` (which may use ``"$@"``) in bash as the act user, with the
    act's umask, a fresh environment and the user's groups (the production's included)."""
    return argv("setpriv", "--reuid", run_as.user, "--regid", run_as.group, "--init-groups",
                "--reset-env", "--", "bash", "-c", f"umask {ACT_UMASK} && {body}", "manage") \
        + ' "$@"'
