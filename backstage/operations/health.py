"""Health checks of an act: through a release's own socket, and through nginx per gig."""

from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.model import Layout, Production


def health_spec(production: Production, act_name: str) -> dict:
    """What the host helper's ``health`` check asks of an act: Host header, path, status."""
    act = production.acts[act_name]
    gigs = production.gigs_of(act_name)
    host = act.health.host or (production.gigs[gigs[0]].domains[0].replace("*", "www", 1)
                               if gigs else "localhost")
    return {"host": host, "path": act.health.path or "/", "status": act.health.expected,
            "timeout": act.health.timeout, "retries": act.health.retries,
            "https": any(production.gigs[g].https for g in gigs)}


def gig_check(production: Production, act: str, gig_name: str, layout: Layout) -> dict:
    """A health check of an act through one of its gigs: over HTTPS when the gig has TLS
    (its plain HTTP port only redirects)."""
    gig = production.gigs[gig_name]
    check = {**health_spec(production, act), "host": gig.domains[0].replace("*", "www", 1),
             "port": gig.port or layout.http_port}
    if gig.https:
        check.update(port=gig.tls_port, tls=True)
    return check


def nginx_health(script: Script, production: Production, act: str, layout: Layout,
                 python: str) -> Script:
    """Check each gig of the act through nginx (also waits out nginx's asynchronous reload)."""
    for gig in production.gigs_of(act):
        sess_cmd.health_via_nginx(script, layout, python, gig_check(production, act, gig, layout))
    return script
