"""``book-gig`` and ``cancel-gig`` on one host: one gig's nginx server block, ``nginx -t``
first; and the gig files a deploy installs."""

from backstage.commands import gig as gig_cmd
from backstage.commands import history
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations.certs import acme_gigs, certificate_files
from backstage.operations.health import gig_check
from backstage.operations.steps import Step
from backstage.render import Renderer
from backstage.util import sha256


def gig_files(production: Production, act: str, layout: Layout, renderer: Renderer,
              observed: Observed, certificates: dict | None = None) -> dict[str, str]:
    """Rendered gig files of an act, and the ``certificates`` (gig -> full chain and key) of
    its ``tls = "acme"`` gigs, that differ from what the host has."""
    files = {layout.gig_conf(g): renderer.gig(layout, g) for g in production.gigs_of(act)}
    for gig, certificate in (certificates or {}).items():
        files.update(certificate_files(layout, gig, certificate))
    return {path: text for path, text in files.items() if observed.digest(path) != sha256(text)}


def private_files(production: Production, layout: Layout) -> tuple[str, ...]:
    """The files a host keeps 0600: the keys of ``tls = "acme"`` gigs."""
    return tuple(layout.tls_key(g) for g in acme_gigs(production))


def plan_gig(production: Production, host: str, layout: Layout, observed: Observed,
             renderer: Renderer, gig_name: str, cancel: bool, holder: dict,
             certificates: dict | None = None) -> Step | None:
    """Install (or remove) one gig's file (and its certificate, from ``certificates``),
    checked through nginx when its act is live; None when the host is already as asked."""
    act = production.gigs[gig_name].act
    path = layout.gig_conf(gig_name)
    if cancel:
        files, removed = {}, ([path] if observed.has(path) else [])
    else:
        own = {path, layout.tls_certificate(gig_name), layout.tls_key(gig_name)}
        files = {p: t for p, t in gig_files(production, act, layout, renderer, observed,
                                            certificates).items() if p in own}
        removed = []
    private = private_files(production, layout)
    script = gig_cmd.install_gigs(Script(), layout, files, removed, observed.services, private)
    if not script:
        return None
    if not cancel and observed.current_release(act):
        sess_cmd.health_via_nginx(script, layout, production.hosts[host].python,
                                  gig_check(production, act, gig_name, layout))
    event = "cancel-gig" if cancel else "book-gig"
    history.append(script, layout, {"time": holder["time"], "by": holder["by"], "gig": gig_name,
                                    "event": event})
    payload = gig_cmd.private_payload(files, private)
    return Step("gig", "", script.text(), payload and (lambda: payload))
