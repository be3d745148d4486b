"""``book-gig`` and ``cancel-gig`` on one host: one gig's nginx server block, ``nginx -t``
first; and the gig files a deploy installs."""

from backstage.commands import gig as gig_cmd
from backstage.commands import history
from backstage.commands import sess as sess_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations.health import gig_check
from backstage.operations.steps import Step
from backstage.render import Renderer
from backstage.util import sha256


def gig_files(production: Production, act: str, layout: Layout, renderer: Renderer,
              observed: Observed) -> dict[str, str]:
    """Rendered gig files of an act that differ from what the host has."""
    files = {layout.gig_conf(g): renderer.gig(layout, g) for g in production.gigs_of(act)}
    return {path: text for path, text in files.items() if observed.digest(path) != sha256(text)}


def plan_gig(production: Production, host: str, layout: Layout, observed: Observed,
             renderer: Renderer, gig_name: str, cancel: bool, holder: dict) -> Step | None:
    """Install (or remove) one gig's file, checked through nginx when its act is live; None
    when the host is already as asked."""
    act = production.gigs[gig_name].act
    path = layout.gig_conf(gig_name)
    if cancel:
        files, removed = {}, ([path] if observed.has(path) else [])
    else:
        files = {p: t for p, t in gig_files(production, act, layout, renderer, observed).items()
                 if p == path}
        removed = []
    script = gig_cmd.install_gigs(Script(), layout, files, removed, observed.services)
    if not script:
        return None
    if not cancel and observed.current_release(act):
        sess_cmd.health_via_nginx(script, layout, production.hosts[host].python,
                                  gig_check(production, act, gig_name, layout))
    event = "cancel-gig" if cancel else "book-gig"
    history.append(script, layout, {"time": holder["time"], "by": holder["by"], "gig": gig_name,
                                    "event": event})
    return Step("gig", "", script.text())
