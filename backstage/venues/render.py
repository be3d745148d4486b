"""Render a venue's Emperor ini and its acts' vassal inis (the Python API's stage).

Templates ``venue/emperor.ini.j2`` and ``venue/vassal.ini.j2`` of the default templates; a
venue has no project folder, so there are no overrides here.
"""

import jinja2

from backstage.render import (
    HARAKIRI_SECONDS,
    LISTEN_BACKLOG,
    default_templates,
    template_environment,
)
from backstage.venues.names import slug
from backstage.venues.paths import VenuePaths

ALLOWED_HOSTS = "localhost,127.0.0.1,[::1]"


def _environment() -> jinja2.Environment:
    return template_environment(jinja2.FileSystemLoader(default_templates()))


def emperor_ini(paths: VenuePaths, venue: str) -> str:
    return _environment().get_template("venue/emperor.ini.j2").render(
        venue=venue, root=paths.root, vassals=paths.vassals, pidfile=paths.emperor_pidfile,
        log=paths.emperor_log,
    )


def act_environment(paths: VenuePaths, venue: str, act: str, module: str) -> dict[str, str]:
    """What an act of a venue finds in its environment (the secrets file adds the rest).

    ``BACKSTAGE_DATABASES`` is left unset: the act's settings then keep one sqlite file per
    logical database in the venue's ``data/``.
    """
    return {
        "DJANGO_SETTINGS_MODULE": f"{module}.settings",
        "BACKSTAGE_VENUE": venue,
        "BACKSTAGE_ACT": act,
        "BACKSTAGE_ALLOWED_HOSTS": ALLOWED_HOSTS,
        "BACKSTAGE_DATA_DIR": paths.data,
        "BACKSTAGE_STATIC_ROOT": paths.static(act),
        "BACKSTAGE_MEDIA_ROOT": paths.media(act),
    }


def vassal_ini(paths: VenuePaths, venue: str, act: str, module: str, port: int,
               processes: int = 2, threads: int = 1) -> str:
    return _environment().get_template("venue/vassal.ini.j2").render(
        venue=venue, root=paths.root, act=act, slug=slug(act), venv=paths.venv,
        act_dir=paths.act_dir(act), wsgi=f"{module}.wsgi:application",
        env=act_environment(paths, venue, act, module), env_file=paths.env_file(act),
        processes=processes, threads=threads, listen=LISTEN_BACKLOG, port=int(port),
        socket=paths.socket(act), static_root=paths.static(act), media_root=paths.media(act),
        harakiri=HARAKIRI_SECONDS, stats=paths.stats(act), pidfile=paths.pidfile(act),
        log=paths.act_log(act),
    )
