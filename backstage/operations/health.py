"""Health and smoke checks of an act: through a release's own socket, and through nginx per
gig."""

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


def smoke_spec(production: Production, act_name: str, record: dict) -> dict | None:
    """What the host helper's ``smoke`` check asks of a release through its own socket: each
    request, the Host header and timeout of the health check, and the history entry its
    answers go into (``record``); None when the act has no smoke requests."""
    act = production.acts[act_name]
    if not act.smoke:
        return None
    health = health_spec(production, act_name)
    return {"checks": [s.model_dump() for s in act.smoke], "host": health["host"],
            "https": health["https"],
            "timeout": health["timeout"], "record": {"event": "smoke", "act": act_name,
                                                     "via": "socket", **record}}


def via_gig(production: Production, gig_name: str, layout: Layout, spec: dict) -> dict:
    """A check (health or smoke) through one of the act's gigs: its first domain, over HTTPS
    when the gig has TLS (its plain HTTP port only redirects). While the act is in
    maintenance (its page exists), the gig answers 503 to everyone: the helper then expects
    that, and sends no smoke request."""
    gig = production.gigs[gig_name]
    check = {**spec, "host": gig.domains[0].replace("*", "www", 1),
             "port": gig.port or layout.http_port,
             "maintenance": layout.maintenance_page(gig.act)}
    if gig.https:
        check.update(port=gig.tls_port, tls=True)
    return check


def gig_check(production: Production, act: str, gig_name: str, layout: Layout) -> dict:
    """A health check of an act through one of its gigs."""
    return via_gig(production, gig_name, layout, health_spec(production, act))


def nginx_health(script: Script, production: Production, act: str, layout: Layout,
                 python: str) -> Script:
    """Check each gig of the act through nginx (also waits out nginx's asynchronous reload)."""
    for gig in production.gigs_of(act):
        sess_cmd.health_via_nginx(script, layout, python, gig_check(production, act, gig, layout))
    return script


def nginx_smoke(script: Script, production: Production, act: str, release: str, layout: Layout,
                python: str, record: dict) -> Script:
    """Send the act's smoke requests through each of its gigs (nothing without any)."""
    spec = smoke_spec(production, act, record)
    for gig in production.gigs_of(act) if spec else ():
        check = via_gig(production, gig, layout, spec)
        check["record"] = {**spec["record"], "via": f"gig {gig}"}
        sess_cmd.smoke_via_nginx(script, layout, python, act, release, check)
    return script
