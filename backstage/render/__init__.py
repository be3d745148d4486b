"""Render layer: the files Backstage installs on hosts, from Jinja2 templates.

Backstage's own templates (the repository's top-level ``templates/`` folder) are the
defaults. A deployment project overrides any of them by putting a file of the same name in its
own ``templates/`` folder (next to ``inventories/``).
"""

import base64
import json
from pathlib import Path

import jinja2

from backstage.model import Layout, Production, RunAs, django, servers
from backstage.util import sha256

LISTEN_BACKLOG = 1024
HARAKIRI_SECONDS = 60
DEFAULT_MIME_TYPES = "/etc/nginx/mime.types"
# What a gig in maintenance tells clients to wait before they retry (Retry-After, seconds).
MAINTENANCE_RETRY_AFTER = 300
# A gig's access log lines: nginx's combined format, then what the bake after a switch reads
# (backstage.remote.hostside.ACCESS_LINE parses it; a unit test holds the two together).
ACCESS_LOG_FORMAT = ('$remote_addr - $remote_user [$time_local] "$request" $status '
                     '$body_bytes_sent "$http_referer" "$http_user_agent" $msec $request_time '
                     '"$upstream_status" "$upstream_addr"')
PACKAGE = Path(__file__).resolve().parent.parent


def default_templates() -> Path:
    """Backstage's own templates: ``backstage/templates/`` in an installed package, the
    repository's ``templates/`` in a checkout (an editable install maps no data folders)."""
    installed = PACKAGE / "templates"
    return installed if installed.is_dir() else PACKAGE.parent / "templates"


def template_environment(loader: jinja2.BaseLoader, **syntax) -> jinja2.Environment:
    """Backstage's Jinja2 settings: undefined values are errors, files keep their last newline,
    nothing is HTML-escaped (these are config files). ``syntax`` changes the delimiters."""
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False, **syntax)


def project_templates(production: Production) -> Path:
    """The ``templates/`` folder of the project an inventory belongs to."""
    folder = production.path.resolve().parent
    if folder.name == "inventories":
        folder = folder.parent
    return folder / "templates"


class Renderer:
    """Renders each installed file of a production from its templates."""

    def __init__(self, production: Production):
        self.production = production
        loaders = [jinja2.FileSystemLoader(default_templates())]
        overrides = project_templates(production)
        if overrides.is_dir():
            loaders.insert(0, jinja2.FileSystemLoader(overrides))
        self.env = template_environment(jinja2.ChoiceLoader(loaders))

    def _render(self, template: str, **context) -> str:
        context.setdefault("production", self.production.name)
        return self.env.get_template(template).render(**context)

    def vassal(self, layout: Layout, act_name: str, release: str, venue_dir: str,
               run_as: RunAs | None = None) -> str:
        """A vassal ini; with ``run_as`` (system layout) it drops to the act's user and lets
        nginx's workers connect to its socket through their group."""
        act = self.production.acts[act_name]
        if servers.speaks_http(act.server):
            return self.server_vassal(layout, act_name, release, venue_dir, run_as)
        return self._render(
            "vassal.ini.j2",
            act=act_name,
            release=release,
            venue=venue_dir,
            shared=layout.shared(act_name),
            release_dir=layout.release(act_name, release),
            chdir=django.working_directory(self.production, act_name, layout, release),
            pythonpath=django.import_path(self.production, act_name, layout, release),
            environment=django.process_environment(self.production, act_name, layout, release),
            overlay=self._overlay_digest(act_name),
            wsgi=act.wsgi_callable,
            settings=django.settings_module(self.production, act_name),
            static_root=layout.static(act_name, release),
            env_file=layout.env_file(act_name, release),
            processes=act.processes,
            threads=act.threads,
            listen=LISTEN_BACKLOG,
            socket=layout.socket(act_name, release),
            run_as=run_as,
            http_port=act.http_port,
            harakiri=HARAKIRI_SECONDS,
            stats=layout.stats_socket(act_name, release),
            log=layout.act_log(act_name),
        )

    def server_vassal(self, layout: Layout, act_name: str, release: str, venue_dir: str,
                      run_as: RunAs | None = None) -> str:
        """The vassal of a release on an HTTP server (gunicorn, granian): what the launcher
        binds and runs, as one base64 argument (no comma, ``%`` or ``$`` uWSGI would read)."""
        act = self.production.acts[act_name]
        options = act.server_options
        app = act.asgi or f"{act.settings_module.rsplit('.', 1)[0]}.asgi:application" \
            if act.interface == "asgi" else act.wsgi_callable
        spec = {
            "socket": layout.socket(act_name, release), "backlog": LISTEN_BACKLOG,
            "user": run_as.user if run_as else None, "group": run_as.group if run_as else None,
            "nginx_group": run_as.nginx_group if run_as else None,
            "env_file": layout.env_file(act_name, release),
            "environment": django.process_environment(self.production, act_name, layout,
                                                      release),
            "chdir": django.working_directory(self.production, act_name, layout, release),
            "pythonpath": django.import_path(self.production, act_name, layout, release),
            "python": f"{venue_dir}/bin/python", "server": act.server,
            "interface": act.interface, "app": app, "workers": act.processes,
            "threads": act.threads, "name": f"{self.production.name}/{act_name}@{release}",
            "options": options.model_dump(),
        }
        return self._render(
            "server.ini.j2", act=act_name, release=release, server=act.server,
            interface=act.interface, overlay=self._overlay_digest(act_name),
            pidfile=servers.pidfile(layout, act_name, release),
            mercy=options.graceful_timeout + 5, python=f"{venue_dir}/bin/python",
            launcher=servers.launcher(layout),
            spec=base64.urlsafe_b64encode(json.dumps(spec, sort_keys=True).encode()).decode(),
            log=layout.act_log(act_name))

    def _overlay_digest(self, act_name: str) -> str | None:
        """In the vassal, so that a changed overlay makes a new release like any change."""
        act = self.production.acts[act_name]
        return sha256("\0".join(self.settings_modules(act_name).values()))[:12] \
            if act.settings_overlay or act.settings_file else None

    def settings_overlay(self) -> str:
        """Backstage's settings module (see :mod:`backstage.model.django`); the same text for
        every act, which a project may override like any template."""
        return self._render("backstage_settings.py")

    def settings_modules(self, act_name: str) -> dict[str, str]:
        """The settings modules a release of the act holds beside its code: module name ->
        text (the overlay, and the act's ``settings_file``)."""
        act, modules = self.production.acts[act_name], {}
        if act.settings_overlay:
            modules[django.OVERLAY_MODULE] = self.settings_overlay()
        if act.settings_file:
            modules[act.settings_module] = act.settings_file.read_text(encoding="utf-8")
        return modules

    def gig(self, layout: Layout, gig_name: str) -> str:
        gig = self.production.gigs[gig_name]
        return self._render(
            "gig.conf.j2",
            gig=gig_name,
            act=gig.act,
            domains=gig.domains,
            port=gig.port or layout.http_port,
            client_max_body_size=gig.client_max_body_size,
            access_log=layout.gig_access_log(gig_name),
            log_format=f"backstage_{self.production.name}_{gig_name}".replace("-", "_"),
            log_format_text=ACCESS_LOG_FORMAT,
            static=gig.static,
            static_root=layout.current_static(gig.act),
            media=gig.media,
            media_root=layout.media(gig.act),
            socket=layout.stable_socket(gig.act),
            http_socket=servers.http_link(layout, gig.act),
            http_flag=servers.http_flag(layout, gig.act),
            read_timeout=HARAKIRI_SECONDS + 5,
            tls=gig.https,
            tls_port=gig.tls_port,
            tls_certificate=gig.tls_certificate or layout.tls_certificate(gig_name),
            tls_key=gig.tls_key or layout.tls_key(gig_name),
            hsts_max_age=gig.hsts_max_age,
            acme_challenges=self.acme_challenges(layout) if gig.tls == "acme" else None,
            maintenance_page=layout.maintenance_page(gig.act),
            maintenance_dir=layout.maintenance_dir,
            retry_after=MAINTENANCE_RETRY_AFTER,
        )

    def acme_challenges(self, layout: Layout) -> str | None:
        """Where port 80 finds HTTP-01 answers, when certificates come with that challenge."""
        acme = self.production.acme
        return layout.acme_challenges if acme and acme.challenge == "http-01" else None

    def maintenance_page(self, act: str, message: str | None) -> str:
        """The page an act's gigs serve during maintenance (``maintenance.html``, which a
        project may override; ``message`` is HTML-escaped there)."""
        return self._render("maintenance.html.j2", act=act, message=message,
                            retry_after=MAINTENANCE_RETRY_AFTER)

    def default_server(self, layout: Layout, host: str) -> str:
        """The server of each port the host's gigs listen on that answers a Host header no
        gig books: 404 over HTTP, a refused handshake over HTTPS."""
        gigs = [self.production.gigs[g] for a in self.production.acts_on(host)
                for g in self.production.gigs_of(a)]
        ports = sorted({layout.http_port, *(g.port for g in gigs if g.port)})
        return self._render("default_server.conf.j2", ports=ports,
                            tls_ports=sorted({g.tls_port for g in gigs if g.https}),
                            acme_challenges=self.acme_challenges(layout))

    def emperor_ini(self, layout: Layout, daemonize: bool) -> str:
        return self._render(
            "emperor.ini.j2",
            vassals=layout.vassals,
            stats=layout.emperor_stats,
            pidfile=layout.emperor_pidfile,
            daemonize=daemonize,
            log=layout.emperor_log,
        )

    def emperor_unit(self, layout: Layout) -> str:
        return self._render("emperor.service.j2", uwsgi=layout.uwsgi, emperor_ini=layout.emperor_ini,
                            pidfile=layout.emperor_pidfile)

    def nginx_conf(self, layout: Layout) -> str:
        return self._render(
            "nginx.conf.j2",
            pidfile=layout.nginx_pidfile,
            log_dir=layout.log,
            mime_types=DEFAULT_MIME_TYPES,
            temp=f"{layout.nginx_dir}/temp",
            sites=layout.nginx_sites,
        )
