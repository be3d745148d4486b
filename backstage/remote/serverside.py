"""Runs an act's HTTP server (gunicorn, granian) on its release's socket: the command of the
release's vassal (``attach-daemon``), standard library only until the server is imported.

``bind`` runs as root with the venue's Python isolated (``-I -S``: nothing of the venue or
the act is imported): it binds the release's socket in root's socket folder, gives it to the
act's user and nginx's group (0660), drops to the act's user and execs ``serve`` with the
socket as descriptor 3 and the act's environment (its env file read as the act's user). The
act never gets a name in that folder: it cannot point nginx (or root's checks) elsewhere.

``serve`` runs as the act's user with the venue's Python: it starts the server on descriptor
3, gunicorn as from systemd's socket activation, granian with its listener made from it.
SIGTERM (the vassal stopping) stops either gracefully; SIGHUP replaces its workers.
"""

import base64
import grp
import importlib
import json
import os
import pwd
import socket
import sys
import time
import traceback

LISTEN_FD = 3


def decode(text):
    return json.loads(base64.urlsafe_b64decode(text.encode()))


def bind(spec, text):
    path = spec["socket"]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)
    sock.bind(path)
    os.umask(umask)
    if spec["user"]:
        os.chown(path, pwd.getpwnam(spec["user"]).pw_uid, grp.getgrnam(spec["nginx_group"]).gr_gid)
    os.chmod(path, 0o660)
    sock.listen(spec["backlog"])
    fd = sock.detach()
    if fd != LISTEN_FD:
        os.dup2(fd, LISTEN_FD)
        os.close(fd)
    os.set_inheritable(LISTEN_FD, True)
    if spec["user"]:
        account, gid = pwd.getpwnam(spec["user"]), grp.getgrnam(spec["group"]).gr_gid
        os.initgroups(spec["user"], gid)  # the production's group reads venues and stage
        os.setgid(gid)
        os.setuid(account.pw_uid)
        os.environ["HOME"] = account.pw_dir
    os.umask(0o027)
    os.chdir(spec["chdir"])
    os.execve(spec["python"], [spec["python"], __file__, "serve", text], environment(spec))


def environment(spec):
    """The server's environment: the vassal's, the act's variables, its env file (read here,
    as the act's user: it is 0600) and its import path."""
    env = dict(os.environ, LANG="C.UTF-8", PYTHONUTF8="1", **spec["environment"])
    with open(spec["env_file"], encoding="utf-8") as f:
        env.update(line.split("=", 1) for line in f.read().split("\n") if "=" in line)
    env["PYTHONPATH"] = os.pathsep.join(spec["pythonpath"])
    return env


def load_app(spec):
    """The act's callable: the one named, else what Django's WSGI_APPLICATION names."""
    if spec["app"]:
        module, attribute = spec["app"].split(":")
        return getattr(importlib.import_module(module), attribute)
    from django.core.servers.basehttp import get_internal_wsgi_application

    return get_internal_wsgi_application()


# After an app that cannot be imported: how long the launcher waits before it exits (and
# uWSGI starts it again), so that its error stays the last line of the log while the health
# check retries.
FAILED_LOAD_PAUSE = 60


def check_app(spec):
    """Import the act's app once before the server starts. When it cannot be imported, the
    log ends with its traceback and then the error's own line (not buried under the server's
    worker frames, or a respawn's), and the socket closes, so the health check fails fast."""
    try:
        load_app(spec)
    except Exception as exc:  # noqa: BLE001  (any error of the app)
        traceback.print_exc()
        while exc.__cause__ or exc.__context__:
            exc = exc.__cause__ or exc.__context__
        print(traceback.format_exception_only(exc)[-1].strip(), file=sys.stderr, flush=True)
        os.close(LISTEN_FD)
        time.sleep(FAILED_LOAD_PAUSE)
        sys.exit(1)


def serve_gunicorn(spec):
    from gunicorn.app.base import BaseApplication

    options, threads = spec["options"], spec["threads"]
    settings = {
        "workers": spec["workers"], "threads": threads, "backlog": spec["backlog"],
        "worker_class": options.get("worker_class") or ("gthread" if threads > 1 else "sync"),
        "timeout": options["timeout"], "graceful_timeout": options["graceful_timeout"],
        "max_requests": options["max_requests"],
        "max_requests_jitter": options["max_requests_jitter"],
        "keepalive": options["keepalive"], "proc_name": spec["name"], "errorlog": "-",
    }

    class Act(BaseApplication):
        def load_config(self):
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return load_app(spec)

    # Socket activation: gunicorn serves descriptor 3 and never unlinks the socket's path.
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    Act().run()


def serve_granian(spec):
    from granian._granian import SocketHolder
    from granian.constants import Interfaces
    from granian.server import Server

    class Inherited(Server):
        """granian with its listener made from descriptor 3, not bound by itself."""

        def _init_shared_socket(self):  # granian 2.8's MPServer, given the socket
            self._shd = SocketHolder(LISTEN_FD, True, spec["backlog"])
            self._sfd, self._ssp = LISTEN_FD, None
            self._sso = socket.socket(fileno=LISTEN_FD)
            self._sso.set_inheritable(True)

    options = spec["options"]
    app = spec["app"] or "django.core.servers.basehttp:get_internal_wsgi_application"
    Inherited(
        app, interface=Interfaces(spec["interface"]), factory=not spec["app"],
        workers=spec["workers"], blocking_threads=spec["threads"],
        runtime_threads=options["runtime_threads"], backlog=spec["backlog"],
        respawn_failed_workers=options["respawn_failed_workers"],
        workers_lifetime=options["workers_lifetime"],
        workers_kill_timeout=options["graceful_timeout"],
    ).serve()


if __name__ == "__main__":
    SPEC = decode(sys.argv[2])
    if sys.argv[1] == "bind":
        bind(SPEC, sys.argv[2])
    else:
        sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
        check_app(SPEC)
        {"gunicorn": serve_gunicorn, "granian": serve_granian}[SPEC["server"]](SPEC)
