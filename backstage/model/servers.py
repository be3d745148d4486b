"""The application servers an act may run on, and their options in the inventory.

``uwsgi`` (the default) is a uWSGI vassal speaking the uwsgi protocol on the release's socket.
``gunicorn`` and ``granian`` speak HTTP on the same socket: their vassal is a uWSGI vassal too,
whose only job is to run the server (``attach-daemon``), so the Emperor supervises every
server the same way (start, stop, retire, restart). Backstage adds the server's pinned
requirement to the act's venue; the user never types it.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

Int = Annotated[int, Strict()]
Seconds = Annotated[int, Strict(), Field(ge=1, le=3600)]

SERVERS = ("uwsgi", "gunicorn", "granian")
# What each server can run: uWSGI and gunicorn's own workers are WSGI only.
INTERFACES = {"uwsgi": ("wsgi",), "gunicorn": ("wsgi",), "granian": ("wsgi", "asgi")}
# The requirement Backstage adds to the venue of an act that runs on the server.
REQUIREMENTS = {"gunicorn": "gunicorn==23.0.0", "granian": "granian==2.8.9"}


class Options(BaseModel):
    """Options every HTTP server takes; unknown keys are errors naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Seconds = 60  # a request running longer is killed (uWSGI's harakiri)
    graceful_timeout: Seconds = 30  # how long a stopping server finishes in-flight requests


class Gunicorn(Options):
    """``[acts.x.gunicorn]``: workers and threads are the act's ``processes``/``threads``."""

    worker_class: Literal["sync", "gthread"] | None = None  # default: gthread when threads > 1
    max_requests: Int = Field(5000, ge=0, le=10_000_000)
    max_requests_jitter: Int = Field(500, ge=0, le=10_000_000)
    keepalive: Int = Field(2, ge=0, le=600)


class Granian(Options):
    """``[acts.x.granian]``: workers are the act's ``processes``, blocking threads its
    ``threads``."""

    runtime_threads: Int = Field(1, ge=1, le=256)
    respawn_failed_workers: Annotated[bool, Strict()] = True
    workers_lifetime: Int | None = Field(None, ge=60, le=10_000_000)


def speaks_http(server: str) -> bool:
    """Whether a server's socket speaks HTTP (nginx ``proxy_pass``), not uwsgi."""
    return server != "uwsgi"


def requirements(servers) -> tuple[str, ...]:
    """The requirements Backstage adds to a venue whose acts run on ``servers``."""
    return tuple(sorted({REQUIREMENTS[s] for s in servers if s in REQUIREMENTS}))


def launcher(layout) -> str:
    """The host-side program a server's vassal runs (``backstage/remote/serverside.py``),
    root's: every start writes the version of the Backstage that starts it."""
    return f"{layout.stage}/serverside.py"


def marker(layout, act: str, release: str) -> str:
    """Root's file beside a release's socket telling that it speaks HTTP: the checks, the
    switch and ``restart`` read it, so a rollback to a release of another server is right."""
    return layout.socket(act, release)[: -len(".sock")] + ".http"


def pidfile(layout, act: str, release: str) -> str:
    """The pid of a server's vassal (root's, in root's socket folder): the server is its
    child."""
    return layout.socket(act, release)[: -len(".sock")] + ".pid"


def http_link(layout, act: str) -> str:
    """The stable socket of an act whose live release speaks HTTP: nginx sends a gig's
    requests there (``proxy_pass``) while :func:`http_flag` exists, else to the stable
    socket (``uwsgi_pass``)."""
    return f"{layout.run}/{act}.http.sock"


def http_flag(layout, act: str) -> str:
    """A plain file (nginx's ``-f`` cannot test a socket: it opens the path) that is there
    while the act's live release speaks HTTP; a switch between servers makes or removes it
    between the moves of the two stable sockets."""
    return f"{layout.run}/{act}.http"


def venue_requirements(production, venue: str) -> tuple[str, ...]:
    """What Backstage adds to a venue's requirements: the servers its acts run on (all its
    acts', so every act of a venue gets the same venue)."""
    return requirements(a.server for a in production.acts.values() if a.venue == venue)
