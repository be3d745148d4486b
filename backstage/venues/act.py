"""Acts of a venue: a Django project under ``acts/<Act>/``, run by the venue's Emperor.

``new_act`` scaffolds the project (or keeps the one there), records its port, migrates its
database, collects its static files and launches it; an :class:`Act` then starts, stops,
restarts it and reports its state, logs and port.
"""

import io
import json
import secrets
import tarfile
import time
from typing import TYPE_CHECKING

from backstage.commands.shell import Script
from backstage.venues import commands
from backstage.venues.errors import ActFailed
from backstage.venues.names import act_name, module_name, slug
from backstage.venues.paths import check_socket_paths
from backstage.venues.ports import PORT_HIGH, PORT_LOW, preferred_port
from backstage.venues.render import act_environment, vassal_ini
from backstage.venues.scaffold import Scaffold, render_act

if TYPE_CHECKING:
    from backstage.venues.venue import Venue


class Act:
    """An act of a venue. Get one from ``new_act`` or ``venue.acts[name]``."""

    def __init__(self, venue: "Venue", name: str, port: int):
        self.venue, self.name, self.port = venue, name, int(port)
        self.slug = slug(name)
        self.module = module_name(name)

    @property
    def path(self) -> str:
        """The act's code: ``<venue>/acts/<Act>``."""
        return self.venue.paths.act_dir(self.name)

    @property
    def url(self) -> str:
        """Where the act answers, on its venue's host (loopback only)."""
        return f"http://localhost:{self.port}/"

    def get_uwsgi_port(self) -> int:
        """The port the act's uWSGI serves HTTP on, at 127.0.0.1 of the venue's host."""
        return self.port

    def _run(self, script: Script, what: str) -> str:
        return self.venue.place.run(script, what, error=ActFailed)

    def start(self, timeout: float = 60) -> "Act":
        """Enable the act's vassal (starting the venue's Emperor if needed) and wait until it
        answers HTTP; raise ActFailed with the last lines of its log when it does not."""
        self._run(commands.start_acts(Script(), self.venue.paths, {self.name: self.port},
                                       timeout), "start")
        return self

    def stop(self, timeout: float = 90) -> "Act":
        """Disable the act's vassal and wait until none of its processes is left."""
        self._run(commands.stop_acts(Script(), self.venue.paths, {self.name: self.port},
                                      timeout), "stop")
        return self

    def restart(self, timeout: float = 60) -> "Act":
        """Reload gracefully: new worker processes load the act's code again (started if it
        was stopped); wait until they answer."""
        self._run(commands.restart_acts(Script(), self.venue.paths, {self.name: self.port},
                                         timeout), "restart")
        return self

    def status(self) -> dict:
        """``state``, ``enabled``, ``master`` and ``workers`` pids, ``pids`` of all its
        processes, ``emperor`` (the venue's Emperor's pid), ``port`` and ``url``.

        States: ``running``; ``stopped``; ``stopping`` (disabled, processes left);
        ``starting`` (enabled, processes but no master answering yet); ``failed`` (enabled,
        no process, Emperor running); ``down`` (enabled, the Emperor does not run: after a
        reboot, say; ``start`` brings it back); ``absent`` (no vassal file).
        """
        out = self.venue.place.run(commands.status(self.venue.paths, {self.name: self.port}),
                                   "status")
        data = json.loads(out)
        info = data["acts"][self.name]
        if info["enabled"] is None:
            state = "absent"
        elif not info["enabled"]:
            state = "stopping" if info["running"] else "stopped"
        elif info["running"]:
            state = "running" if info["master"] else "starting"
        else:
            state = "failed" if data["emperor"] else "down"
        return {"act": self.name, "venue": self.venue.name, "state": state, **info,
                "emperor": data["emperor"], "url": self.url}

    def logs(self, lines: int = 50) -> str:
        """The last lines of the act's uWSGI log (requests, errors, Django's warnings)."""
        return self.venue.place.run(commands.log_tail(self.venue.paths, self.name, lines),
                                    "logs")

    def manage(self, *args: str) -> str:
        """Run ``manage.py ARGS`` as the act runs (same Python, environment, directory)."""
        env = act_environment(self.venue.paths, self.venue.name, self.name, self.module)
        script = commands.manage(Script().step("manage"), self.venue.paths, self.name, env,
                                  *map(str, args))
        return self._run(script, "manage")

    def __repr__(self):
        return f"<Act {self.name!r} of venue {self.venue.name!r} on port {self.port}>"


def act_payload(scaffold: Scaffold | None, act: str, slug_: str, with_code: bool) -> bytes:
    """A tar of ``acts/<Act>/...`` (when ``with_code``) and a new ``secrets/<slug>.env``."""
    buffer = io.BytesIO()
    now = time.time()

    def add(name: str, data: bytes, mode: int):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, now
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if with_code and scaffold is not None:
            for path, text in sorted(scaffold.files.items()):
                add(f"acts/{act}/{path}", text.encode(), scaffold.mode(path))
        add(f"secrets/{slug_}.env",
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n".encode(), 0o600)
    return buffer.getvalue()


def new_act(venue: "Venue", name: str, *, processes: int = 2, threads: int = 1,
            timeout: float = 60) -> Act:
    """Scaffold the act ``name`` in ``venue`` (a Django project under ``acts/<name>``) and
    launch it under the venue's Emperor; return it running.

    An act that exists keeps its code, secrets, port and vassal: it is only started. Names are
    checked before anything is made (``ValueError``), clashes of lower-case forms included.
    """
    act_name(name)
    if not (1 <= int(processes) <= 256 and 1 <= int(threads) <= 256):
        raise ValueError("processes and threads must be between 1 and 256")
    paths = venue.paths
    check_socket_paths(paths, name)
    state = venue.describe()
    known = set(state["ports"]) | set(state["acts"])
    clash = sorted(a for a in known if a != name and slug(a) == slug(name))
    if clash:
        raise ValueError(f"act {name!r} clashes with act {clash[0]!r} of venue {venue.name!r}: "
                         "act names must differ in more than case")
    exists = name in state["acts"]
    scaffold = None if exists else render_act(name)

    script = commands.unpack_act(Script(), paths)
    commands.allocate_port(script, paths, name, preferred_port(paths.root, slug(name)),
                            PORT_LOW, PORT_HIGH)
    out = venue.place.run(script, "new act", stdin=act_payload(scaffold, name, slug(name),
                                                                not exists))
    port = json.loads(out.strip().splitlines()[-1])["port"]
    venue.refresh()
    act = Act(venue, name, port)

    script = Script()
    vassal = f"{slug(name)}.ini"
    if vassal not in state["vassals"] and vassal + commands.STOPPED_SUFFIX not in state["vassals"]:
        commands.write_vassal(script, paths, name, vassal_ini(
            paths, venue.name, name, act.module, port, int(processes), int(threads)))
    env = act_environment(paths, venue.name, name, act.module)
    commands.prepare_act(script, paths, name, env, slug(name))
    commands.start_acts(script, paths, {name: port}, timeout)
    venue.place.run(script, "launch", error=ActFailed)
    return act
