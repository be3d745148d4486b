"""What a deployed act's Django sees: its environment, import path, working directory.

With its ``settings_overlay`` (the default), an act runs with ``DJANGO_SETTINGS_MODULE`` set to
a module Backstage writes into each release (``render/templates/backstage_settings.py``). It
imports the act's own settings module (``BACKSTAGE_SETTINGS``), then sets what the deployment
owns from the variables below, so a project that builds its settings itself deploys unchanged:

- ``DATABASES``: each alias the act maps to a logical database is the production's entry
  (``BACKSTAGE_DATABASES``); any other sqlite database whose file is relative or inside the
  release moves under ``data/<act>/`` (a release is replaced at every deploy).
- ``ALLOWED_HOSTS`` (replaced) and ``CSRF_TRUSTED_ORIGINS`` (added to): the gigs' domains and
  what health checks use.
- ``STATIC_ROOT`` (where ``collectstatic`` writes and nginx serves), ``MEDIA_ROOT``, and
  ``STATIC_URL``/``MEDIA_URL`` when a gig serves them (its ``static``/``media`` prefixes).
- ``SECRET_KEY`` when the act's environment or secrets hold ``DJANGO_SECRET_KEY``.
- ``SECURE_PROXY_SSL_HEADER``: nginx sets ``X-Forwarded-Proto`` (never passes a client's).
- ``LOGGING``: a file handler that would write into the release logs to stderr instead
  (uWSGI writes that to the act's log).

Every value is a plain environment variable, so the same module serves every act and the env
file (0600, the act's) stays the one place secrets are written.
"""


from backstage.model.inventory import Production
from backstage.model.layout import Layout
from backstage.model.secrets import Secret

OVERLAY_MODULE = "backstage_settings"

# What the overlay sets, for ``plan`` and the documentation.
OVERRIDDEN = ("DATABASES", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "STATIC_ROOT", "STATIC_URL",
              "MEDIA_ROOT", "MEDIA_URL", "SECRET_KEY", "SECURE_PROXY_SSL_HEADER", "LOGGING")


def overlay_summary(production: Production, act_name: str) -> str | None:
    """What the overlay sets over the act's settings, in one line (``plan`` prints it); None
    without the overlay."""
    act = production.acts[act_name]
    if not act.settings_overlay:
        return None
    aliases = ", ".join(f"{alias}: {logical}" for alias, logical in act.database_aliases.items())
    names = [f"DATABASES ({aliases})" if aliases else "DATABASES (sqlite files into data/)",
             *OVERRIDDEN[1:]]
    own = act.settings or str(act.settings_file)
    return f"{own} overlaid: {', '.join(names)} (docs/inventory.md: the settings overlay)"


def settings_module(production: Production, act_name: str) -> str:
    """``DJANGO_SETTINGS_MODULE`` of the act's processes."""
    act = production.acts[act_name]
    return OVERLAY_MODULE if act.settings_overlay else act.settings_module


def process_environment(production: Production, act_name: str, layout: Layout,
                        release: str) -> dict[str, str]:
    """The variables the vassal and ``manage.py`` both set, before the env file is read.
    None is secret: they are written in the vassal's file and in command lines."""
    act = production.acts[act_name]
    env = {"DJANGO_SETTINGS_MODULE": settings_module(production, act_name),
           "BACKSTAGE_ACT": act_name,
           "BACKSTAGE_RELEASE": release,
           "BACKSTAGE_STATIC_ROOT": layout.static(act_name, release)}
    if act.settings_overlay:
        env["BACKSTAGE_SETTINGS"] = act.settings_module
    return env


def import_path(production: Production, act_name: str, layout: Layout,
                release: str) -> list[str]:
    """The act's folders of the release, then the overlay's (last: it never shadows one of
    the project's modules)."""
    act = production.acts[act_name]
    folders = [layout.in_release(act_name, release, folder) for folder in act.import_path]
    if act.settings_overlay or act.settings_file:
        folders.append(layout.overlay_dir(act_name, release))
    return folders


def working_directory(production: Production, act_name: str, layout: Layout,
                      release: str) -> str:
    """The project's root in the release (where ``manage.py`` is), as ``runserver`` and every
    app server have it: settings with paths relative to it (a ``TEMPLATES`` dir) work."""
    return layout.in_release(act_name, release, production.acts[act_name].source_root)


def allowed_hosts(production: Production, act_name: str) -> list[str]:
    """The gigs' domains, the health check's host and loopback names."""
    act = production.acts[act_name]
    gig_domains = [d for g in production.gigs_of(act_name) for d in production.gigs[g].domains]
    health = act.health.host or (gig_domains[0].replace("*", "www", 1) if gig_domains
                                 else "localhost")
    # A wildcard gig domain *.example.com is Django's .example.com (it and its subdomains).
    domains = [d.removeprefix("*") for d in gig_domains]
    return list(dict.fromkeys([*domains, health, "localhost", "127.0.0.1"]))


def trusted_origins(production: Production, act_name: str, layout: Layout) -> list[str]:
    """Each gig domain as the browser's ``Origin`` header has it: scheme, and a port that is
    not the scheme's own."""
    origins = []
    for gig in (production.gigs[g] for g in production.gigs_of(act_name)):
        scheme, port = ("https", gig.tls_port) if gig.https else ("http",
                                                                 gig.port or layout.http_port)
        suffix = "" if port == (443 if gig.https else 80) else f":{port}"
        origins += [f"{scheme}://{domain}{suffix}" for domain in gig.domains]
    return origins


def deployment_environment(production: Production, act_name: str, layout: Layout,
                           secrets: dict[str, Secret]) -> dict[str, str | Secret | dict]:
    """The act's env file entries Backstage owns (the overlay reads them; settings written
    for Backstage may too). ``BACKSTAGE_DATABASES`` is ``{alias: DATABASES entry}``."""
    act = production.acts[act_name]
    databases = {alias: production.databases[logical].django(logical, layout.data, secrets)
                 for alias, logical in act.database_aliases.items()}
    env: dict[str, str | Secret | dict] = {
        "BACKSTAGE_PRODUCTION": production.name,
        "BACKSTAGE_ALLOWED_HOSTS": ",".join(allowed_hosts(production, act_name)),
        "BACKSTAGE_CSRF_TRUSTED_ORIGINS": ",".join(trusted_origins(production, act_name,
                                                                   layout)),
        "BACKSTAGE_DATABASES": databases,
        "BACKSTAGE_DATA_DIR": layout.data,
        "BACKSTAGE_ACT_DATA_DIR": layout.act_data(act_name),
        "BACKSTAGE_MEDIA_ROOT": layout.media(act_name),
    }
    gigs = [production.gigs[g] for g in production.gigs_of(act_name)]
    for key, prefixes in (("STATIC_URL", [g.static for g in gigs if g.static]),
                          ("MEDIA_URL", [g.media for g in gigs if g.media])):
        if prefixes:
            env[f"BACKSTAGE_{key}"] = prefixes[0]
    return env
