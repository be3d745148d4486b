"""Commands that make a host a stage: directories, the Emperor, nginx."""

import re
from dataclasses import dataclass

from backstage.commands.shell import Script, argv, q
from backstage.model import Layout


@dataclass(frozen=True)
class Services:
    """How a host runs its services, as its probe found: nginx's path, systemd or not."""

    nginx: str = "nginx"
    systemd: bool = False

    def systemd_manages(self, layout: Layout) -> bool:
        """systemd runs the Emperor and nginx in the system layout only."""
        return self.systemd and layout.kind == "system"

UWSGI_REQUIREMENT = "uwsgi==2.0.31"
EMPEROR_START_TENTHS = 300  # 30 s
PIP_QUIET = ("--disable-pip-version-check", "--no-input", "--quiet")


def make_directories(script: Script, layout: Layout) -> Script:
    return script.step("directories").mkdirs(layout.directories)


def unpack_wheels(script: Script, layout: Layout) -> Script:
    """Unpack the tar of wheels on stdin into the stage's wheelhouse.

    Into a folder of its own first, then each file is renamed in: a deploy installing from the
    wheelhouse meanwhile (another act's) never reads a wheel half written.
    """
    script.raw(f"incoming=$(mktemp -d {q(layout.wheelhouse + '/.incoming-XXXXXX')})")
    script.raw('tar -xf - -C "$incoming"')
    script.raw('find "$incoming" -mindepth 1 -maxdepth 1 -type f -exec '
               f"mv -f -t {q(layout.wheelhouse)} {{}} +")
    return script.raw('rm -rf -- "$incoming"')


def build_stage_venv(script: Script, layout: Layout, python: str) -> Script:
    """The Emperor's own virtualenv, holding the uWSGI built for the host's Python."""
    script.step("stage-venv")
    unpack_wheels(script, layout)
    script.remove(layout.stage_venv)
    script.run(python, "-m", "venv", layout.stage_venv)
    return script.run(
        f"{layout.stage_venv}/bin/pip", "install", *PIP_QUIET, "--no-index",
        "--find-links", layout.wheelhouse, UWSGI_REQUIREMENT,
    )


def start_emperor_daemon(script: Script, layout: Layout, restart: bool) -> Script:
    """Start the Emperor as a daemon (hosts without systemd), unless one runs already.

    Whether one runs is read from the process table (see :func:`emperor_pids`), so a stale or
    forged pidfile never starts a second Emperor on the same vassal folder. The pidfile (for
    people) is made anew, root's and 0644 (the Emperor's umask).
    """
    script.step("emperor")
    alive = emperor_alive(layout)
    if restart:
        script.raw(f'for pid in $({emperor_pids(layout)}); do kill -INT "$pid"; done')
        # Stopping waits for the vassals' in-flight requests (up to their harakiri).
        script.raw(f"for i in $(seq 900); do {alive} || break; sleep 0.1; done")
        script.raw(f"if {alive}; then echo 'the old Emperor did not stop within 90 s' >&2; "
                   "exit 1; fi")
    script.raw(f"if ! {alive}; then {argv('rm', '-f', layout.emperor_pidfile)}; "
               f"{argv(*layout.emperor_argv)}; fi")
    # A loaded host (several stages built at once) may take seconds to start it.
    log = f"{layout.log}/emperor.log"
    return wait_for(script, alive, f"the Emperor did not start; the end of {log}:",
                    EMPEROR_START_TENTHS, also=f"tail -n 20 {q(log)} >&2")


def start_emperor_systemd(script: Script, layout: Layout, restart: bool) -> Script:
    script.step("emperor")
    script.run("systemctl", "daemon-reload")
    script.run("systemctl", "enable", "--now", layout.emperor_unit_name)
    if restart:
        script.run("systemctl", "restart", layout.emperor_unit_name)
    return script


def nginx_command(layout: Layout, services: Services, *args: str) -> str:
    """nginx with the layout's configuration (the user layout runs its own nginx)."""
    if layout.kind == "user":
        return argv(services.nginx, "-p", layout.nginx_dir + "/", "-c", layout.nginx_conf,
                    "-e", f"{layout.log}/nginx-error.log", *args)
    return argv(services.nginx, *args)


def start_nginx(script: Script, layout: Layout, services: Services, reload: bool) -> Script:
    """Start nginx if it is not running; reload it when its configuration changed."""
    script.step("nginx")
    alive = pid_alive(layout.nginx_pidfile)
    script.raw(nginx_command(layout, services, "-t", "-q"))
    if services.systemd_manages(layout):
        script.run("systemctl", "start", "nginx")
        if reload:
            script.run("systemctl", "reload", "nginx")
        return script
    script.raw(f"if ! {alive}; then {nginx_command(layout, services)}; "
               + (f"else {nginx_command(layout, services, '-s', 'reload')}; " if reload else "")
               + "fi")
    return wait_for(script, alive, "nginx did not start: see " + layout.log)


def pid_alive(pidfile: str) -> str:
    """A shell condition: the process named in a pidfile is alive."""
    pid = f"$(cat {q(pidfile)} 2>/dev/null || true)"
    return f'{{ [ -n "{pid}" ] && kill -0 "{pid}" 2>/dev/null; }}'


def wait_for(script: Script, condition: str, message: str, tenths: int = 100,
             also: str = "") -> Script:
    """Poll a shell condition every 0.1 s; fail with a message (and what the shell text
    ``also`` prints, built here from quoted values) when it never holds.

    Once it held, it is not asked again: a daemon seen starting (its first process, before it
    forks into the background) has started, and asking once more could catch the moment
    between two of its processes.
    """
    script.raw(f"held=; for i in $(seq {tenths}); do if {condition}; then held=1; break; fi; "
               "sleep 0.1; done")
    shown = f"{also}; " if also else ""
    return script.raw(f'if [ -z "$held" ]; then echo {q(message)} >&2; {shown}exit 1; fi')


def ere(text: str) -> str:
    """``text`` as a POSIX extended regular expression matching only itself."""
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", text)


def emperor_pids(layout: Layout) -> str:
    """Shell text printing the pids of the production's Emperor: processes of this user (root
    in the system layout) running ``--ini <its emperor.ini>``. No act can forge one, whatever
    it writes; a pidfile could be stale or written by anyone who may write it."""
    pattern = " " + ere(" ".join(layout.emperor_argv[1:])) + "$"
    return f'pgrep -u "$(id -u)" -f -- {q(pattern)}'


def emperor_alive(layout: Layout) -> str:
    """A shell condition: the production's Emperor runs."""
    return f"{{ {emperor_pids(layout)} >/dev/null; }}"


def rescan_line(layout: Layout) -> str:
    """Make the Emperor rescan its vassal directory now instead of at its next poll (3 s)."""
    return f'for pid in $({emperor_pids(layout)}); do kill -WINCH "$pid" 2>/dev/null || true; done'


def rescan_emperor(script: Script, layout: Layout) -> Script:
    return script.raw(rescan_line(layout))


def default_server(script: Script, layout: Layout, text: str, distribution_site: str | None
                   ) -> Script:
    """Install the server for unknown Host headers; disable the distribution's welcome site
    (a link to its sites-available/default), whose ``default_server`` would win."""
    script.step("default-server").write_file(layout.default_server_conf, text)
    if distribution_site:
        script.run("rm", "-f", "--", distribution_site)
    return script
