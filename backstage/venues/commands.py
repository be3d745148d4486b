"""Commands of the Python API's venues: build one, add acts, run its Emperor, start and stop acts.

Pure builders on the command-building core (:mod:`backstage.commands.shell`): they add quoted lines to a
:class:`Script` (or return command text) and run nothing. The same text runs through
``LocalTransport`` on this machine and ``SSHTransport`` on a remote host. Files travel as tar
streams on the command's stdin; state is read by ``remote/venueside.py`` in one round trip.

The venue's Emperor and the ``manage.py`` runs get a clean environment (``PATH``, ``HOME``,
``LANG`` only), so nothing of the shell or Python process that started them leaks into acts.
"""

import json

from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import PIP_QUIET, wait_for
from backstage.remote import program
from backstage.venues.paths import VenuePaths

VENUESIDE_SOURCE = program("venueside")
CLEAN_ENV = 'env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8'
STOPPED_SUFFIX = ".stopped"
LAUNCH_STEP = "launch "


def venueside(python: str, verb: str, spec: dict, script: Script | None = None,
              *shell_words: str) -> str:
    """Run the venue helper with ``python``; ``shell_words`` are this module's own ``"$var"``s."""
    arguments = argv(verb, json.dumps(spec, sort_keys=True))
    source = (script.define("BACKSTAGE_VENUESIDE", VENUESIDE_SOURCE) if script is not None
              else q(VENUESIDE_SOURCE))
    return " ".join([q(python), "-c", source, arguments, *shell_words])


def describe(paths: VenuePaths, python: str) -> str:
    """One command printing the venue's state as JSON (see ``venueside.describe``)."""
    return venueside(python, "describe", {"root": paths.root, "pidfile": paths.emperor_pidfile,
                                          "emperor_ini": paths.emperor_ini})


def build_venue(script: Script, paths: VenuePaths, python: str, wheels: list[str],
                workstation_tag: str, emperor_ini: str, record: dict, fresh: bool) -> Script:
    """Make the venue's folders and virtualenv and install the wheels read from stdin (a tar).

    A fresh venue's virtualenv is (re)made from ``python``; an existing one only gets the
    wheels installed (new requirements). ``venue.json`` is written last: a venue without it is
    a build that did not finish, and the next ``new_venue`` resumes it.
    """
    script.step("venue")
    script.mkdirs(paths.directories)
    script.run("touch", paths.marker)
    script.run("tar", "-xf", "-", "-C", paths.wheelhouse, "--no-same-owner")
    if fresh:
        script.remove(paths.venv)
        script.run(python, "-m", "venv", paths.venv)
    tag = f"$({argv(paths.python, '-c', 'import sys; print(sys.implementation.cache_tag)')})"
    script.raw(f'if [ "{tag}" != {q(workstation_tag)} ]; then echo '
               + q(f"the venue's Python ({python}) is not the workstation's "
                   f"({workstation_tag}), which built its wheels") + " >&2; exit 1; fi")
    script.run(paths.venv + "/bin/pip", "install", *PIP_QUIET, "--no-compile", "--no-index",
               "--find-links", paths.wheelhouse, *[f"{paths.wheelhouse}/{w}" for w in wheels])
    script.write_file(paths.emperor_ini, emperor_ini)
    return script.write_file(paths.record, json.dumps(record, indent=2, sort_keys=True) + "\n")


def unpack_act(script: Script, paths: VenuePaths) -> Script:
    """Extract an act's files (stdin: a tar of ``acts/<Act>/...`` and ``secrets/<slug>.env``).

    Files that exist are kept: an act's code and secrets are never overwritten.
    """
    script.step("unpack")
    script.mkdirs([paths.acts, paths.secrets])
    script.run("chmod", "700", paths.secrets)
    return script.run("tar", "-xf", "-", "-C", paths.root, "--skip-old-files", "--no-same-owner")


def allocate_port(script: Script, paths: VenuePaths, act: str, preferred: int, low: int,
                  high: int) -> Script:
    """Print ``{"port": N, "new": bool}``: the act's recorded port, or a new one now recorded."""
    script.step("port")
    spec = {"venue": paths.root, "act": act, "ports": paths.ports, "lock": paths.ports_lock,
            "preferred": preferred, "low": low, "high": high}
    return script.raw(venueside(paths.python, "allocate", spec, script))


def manage_function(paths: VenuePaths, act: str, environment: dict[str, str]) -> str:
    """A shell function ``manage ARGS``: manage.py as the vassal runs the act.

    Same interpreter, working directory and environment (the vassal's ``env`` lines, then the
    secrets file's ``KEY=value`` lines), and nothing else from the calling shell.
    """
    act_dir = paths.act_dir(act)
    assignments = " ".join(q(f"{k}={v}") for k, v in {**environment, "PYTHONPATH": act_dir}.items())
    return (
        "manage() ( secrets=();"
        " while IFS= read -r line || [ -n \"$line\" ]; do"
        " case \"$line\" in [A-Za-z_]*=*) secrets+=(\"$line\") ;; esac;"
        f" done < {q(paths.env_file(act))};"
        f" cd {q(act_dir)} &&"
        f" exec {CLEAN_ENV} {assignments} \"${{secrets[@]}}\""
        f" {argv(paths.python, act_dir + '/manage.py')} \"$@\" )"
    )


def manage(script: Script, paths: VenuePaths, act: str, environment: dict[str, str],
           *args: str) -> Script:
    script.raw(manage_function(paths, act, environment))
    return script.raw("manage " + argv(*args))


def prepare_act(script: Script, paths: VenuePaths, act: str, environment: dict[str, str],
                database: str) -> Script:
    """Migrate the act's logical database and collect its static files, before it starts."""
    script.raw(manage_function(paths, act, environment))
    script.step(f"migrate {act}")
    script.raw("manage " + argv("migrate", "--noinput", "--database", database, "-v", "0"))
    script.step(f"collectstatic {act}")
    return script.raw("manage " + argv("collectstatic", "--noinput", "-v", "0"))


def write_vassal(script: Script, paths: VenuePaths, act: str, ini: str) -> Script:
    """Write the act's vassal file disabled; ``start_acts`` enables it."""
    script.step(f"vassal {act}")
    script.remove(paths.vassal(act))
    return script.write_file(paths.vassal(act) + STOPPED_SUFFIX, ini)


def emperor_alive(paths: VenuePaths) -> str:
    """A shell condition: the venue's Emperor runs (its pid, and its ini in its command line)."""
    return (f"{{ pid=$(cat {q(paths.emperor_pidfile)} 2>/dev/null || true); [ -n \"$pid\" ] && "
            f"tr '\\0' ' ' < \"/proc/$pid/cmdline\" 2>/dev/null | grep -qF -- {q(paths.emperor_ini)}; }}")


def ensure_emperor(script: Script, paths: VenuePaths) -> Script:
    """Start the venue's Emperor (a daemon of the venue's own uWSGI) unless it runs."""
    script.step("emperor")
    alive = emperor_alive(paths)
    start = (f"( cd {q(paths.root)} && {CLEAN_ENV} {argv(paths.uwsgi, '--ini', paths.emperor_ini)}"
             f" >> {q(paths.emperor_log)} 2>&1 )")
    script.raw(f"if ! {alive}; then {start}; fi")
    return wait_for(script, alive, f"the Emperor did not start: see {paths.emperor_log}")


def rescan(script: Script, paths: VenuePaths) -> Script:
    """Make the Emperor rescan its vassals now instead of at its next poll (3 s)."""
    return script.raw(f"if {emperor_alive(paths)}; then kill -WINCH \"$pid\"; fi")


def stop_emperor(script: Script, paths: VenuePaths, tenths: int = 600) -> Script:
    """Stop the Emperor (SIGINT: its vassals stop gracefully); the vassal files stay as they are."""
    script.step("emperor")
    alive = emperor_alive(paths)
    script.raw(f"if {alive}; then kill -INT \"$pid\"; fi")
    script.raw(f"for i in $(seq {tenths}); do {alive} || break; sleep 0.1; done")
    script.raw(f"if {alive}; then echo {q('the Emperor did not stop: see ' + paths.emperor_log)}"
               " >&2; exit 1; fi")
    return script.remove(paths.emperor_pidfile)


def _enable(paths: VenuePaths, act: str) -> str:
    ini = paths.vassal(act)
    return f"if [ -e {q(ini + STOPPED_SUFFIX)} ]; then {argv('mv', '-f', ini + STOPPED_SUFFIX, ini)}; fi"


def _disable(paths: VenuePaths, act: str) -> str:
    ini = paths.vassal(act)
    return f"if [ -e {q(ini)} ]; then {argv('mv', '-f', ini, ini + STOPPED_SUFFIX)}; fi"


def _wait_up_spec(paths: VenuePaths, act: str, port: int, timeout: float) -> dict:
    return {"act": act, "port": int(port), "log": paths.act_log(act), "stats": paths.stats(act),
            "timeout": timeout, "host": "localhost", "path": "/"}


def _wait_down(script: Script, paths: VenuePaths, act: str, port: int, timeout: float) -> str:
    spec = {"act": act, "act_dir": paths.act_dir(act), "uwsgi": paths.uwsgi, "port": int(port),
            "timeout": timeout}
    return venueside(paths.python, "wait_down", spec, script)


def _launched(script: Script, paths: VenuePaths, act: str, port: int, wait: str) -> Script:
    """Run a wait; when the act did not come up, disable it again, wait until its processes
    are gone (the Emperor respawns a failing vassal until then) and report why."""
    script.step(LAUNCH_STEP + act)
    return script.raw(
        f"if ! out=$({wait} 2>&1); then {_disable(paths, act)}; {rescan_line(paths)}; "
        f"{_wait_down(script, paths, act, port, 30)} >/dev/null 2>&1 || true; "
        f"printf '%s\\n' \"$out\" >&2; failed=1; fi"
    )


def rescan_line(paths: VenuePaths) -> str:
    return f"if {emperor_alive(paths)}; then kill -WINCH \"$pid\"; fi"


def _log_size(script: Script, index: int, paths: VenuePaths, act: str) -> str:
    script.raw(f"size{index}=$(stat -c %s {q(paths.act_log(act))} 2>/dev/null || echo 0)")
    return f'"$size{index}"'


def start_acts(script: Script, paths: VenuePaths, acts: dict[str, int],
               timeout: float = 60) -> Script:
    """Enable the acts' vassals (``acts``: name -> port), start the Emperor if needed, and wait
    until each answers HTTP on its port. An act that does not come up is disabled again and the
    script fails after trying every act, with each failure's last log lines."""
    script.raw("failed=0")
    sizes = {act: _log_size(script, i, paths, act) for i, act in enumerate(acts)}
    script.step("start")
    for act in acts:
        script.raw(_enable(paths, act))
    ensure_emperor(script, paths)
    rescan(script, paths)
    for act, port in acts.items():
        wait = venueside(paths.python, "wait_up", _wait_up_spec(paths, act, port, timeout),
                         script, sizes[act])
        _launched(script, paths, act, port, wait)
    return script.raw('[ "$failed" = 0 ]')


def restart_acts(script: Script, paths: VenuePaths, acts: dict[str, int],
                 timeout: float = 60) -> Script:
    """Reload running acts gracefully (new workers, same master) by bumping their vassal's mtime,
    and start stopped ones; wait until each answers with new workers.

    The Emperor compares mtimes in whole seconds, so the new mtime is at least one second past
    the old one even when two restarts come within the same second.
    """
    script.raw("failed=0")
    sizes = {act: _log_size(script, i, paths, act) for i, act in enumerate(acts)}
    script.step("restart")
    for i, act in enumerate(acts):
        ini = q(paths.vassal(act))
        workers = venueside(paths.python, "workers", {"stats": paths.stats(act)}, script)
        script.raw(f"old{i}=''; if [ -e {ini} ]; then old{i}=$({workers} || true); "
                   f"m=$(( $(stat -c %Y {ini}) + 1 )); n=$(date +%s); "
                   f"touch -d \"@$(( m > n ? m : n ))\" {ini}; fi")
        script.raw(_enable(paths, act))
    ensure_emperor(script, paths)
    rescan(script, paths)
    for i, (act, port) in enumerate(acts.items()):
        wait = venueside(paths.python, "wait_up", _wait_up_spec(paths, act, port, timeout),
                         script, sizes[act], f'"$old{i}"')
        _launched(script, paths, act, port, wait)
    return script.raw('[ "$failed" = 0 ]')


def stop_acts(script: Script, paths: VenuePaths, acts: dict[str, int],
              timeout: float = 90) -> Script:
    """Disable the acts' vassals and wait until none of their processes is left and their
    ports refuse connections (the Emperor stops them gracefully: in-flight requests finish)."""
    script.step("stop")
    for act in acts:
        script.raw(_disable(paths, act))
    rescan(script, paths)
    for act, port in acts.items():
        script.raw(_wait_down(script, paths, act, port, timeout))
    return script


def status(paths: VenuePaths, acts: dict[str, int]) -> str:
    spec = {"uwsgi": paths.uwsgi, "pidfile": paths.emperor_pidfile,
            "emperor_ini": paths.emperor_ini, "acts": {
        act: {"stats": paths.stats(act), "vassal": paths.vassal(act),
              "act_dir": paths.act_dir(act), "port": port}
        for act, port in acts.items()}}
    return venueside(paths.python, "status", spec)


def log_tail(paths: VenuePaths, act: str, lines: int) -> str:
    return argv("tail", "-n", str(int(lines)), paths.act_log(act)) + " 2>/dev/null || true"
