"""Commands for releases that run on an HTTP server (gunicorn, granian; see
:mod:`backstage.model.servers`): the launcher and marker a start writes, the switch of the
stable sockets between servers, and a server's graceful reload."""

from backstage.commands import hostside
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, servers
from backstage.remote import standalone

SERVERSIDE_SOURCE = standalone("serverside")
RELOAD_TIMEOUT_SECONDS = 60


def runs_server(layout: Layout, ini: str) -> bool:
    """Whether a vassal file runs an HTTP server (its command is the launcher)."""
    return f" {servers.launcher(layout)} " in ini


def prepare(script: Script, layout: Layout, act: str, release: str, ini: str) -> Script:
    """Before a vassal starts: for an HTTP server, the launcher it runs and the marker that
    its socket speaks HTTP (both root's); for uWSGI no marker."""
    marker = servers.marker(layout, act, release)
    if not runs_server(layout, ini):
        return script.run("rm", "-f", marker)
    script.write_file(servers.launcher(layout), SERVERSIDE_SOURCE)
    return script.run("touch", marker)


def _link(target: str, path: str) -> str:
    tmp = f"{path}.backstage-new"
    return f"{argv('ln', '-sfn', target, tmp)} && {argv('mv', '-Tf', tmp, path)}"


def link_http_before(script: Script, layout: Layout, act: str, release: str) -> Script:
    """First half of a switch to a release: when it speaks HTTP, point the HTTP stable socket
    at it (nginx sends requests there from then on, before the uwsgi one moves)."""
    marker = q(servers.marker(layout, act, release))
    link = _link(layout.socket_link(act, release), servers.http_link(layout, act))
    flag = argv("touch", servers.http_flag(layout, act))
    return script.raw(f"if [ -e {marker} ]; then {link} && {flag}; fi")


def unlink_http_after(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Second half: when the release speaks uwsgi, remove the HTTP stable socket (nginx goes
    back to ``uwsgi_pass`` on the stable socket, which points at it already)."""
    marker = q(servers.marker(layout, act, release))
    return script.raw(f"if [ ! -e {marker} ]; then {unlink_http(layout, act)}; fi")


def unlink_http(layout: Layout, act: str) -> str:
    """Send nginx back to the stable socket: the flag first, then the HTTP socket link."""
    return (f"{argv('rm', '-f', servers.http_flag(layout, act))} && "
            f"{argv('rm', '-f', servers.http_link(layout, act))}")


def when_http(layout: Layout, act: str, release: str, then: str, otherwise: str) -> str:
    marker = q(servers.marker(layout, act, release))
    return f"if [ -e {marker} ]; then {then}; else {otherwise}; fi"


def reload_line(layout: Layout, python: str, act: str, release: str) -> str:
    """Replace a server's workers gracefully (SIGHUP to the vassal's child) and wait until
    none of the old ones is left: the socket stays open throughout."""
    return hostside(layout, python, "reload_server", {
        "pidfile": servers.pidfile(layout, act, release), "timeout": RELOAD_TIMEOUT_SECONDS})


def release_files(layout: Layout, act: str, release: str) -> list[str]:
    """What a release of an HTTP server leaves beside its socket."""
    return [servers.marker(layout, act, release), servers.pidfile(layout, act, release)]
