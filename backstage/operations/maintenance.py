"""``maintenance on|off`` on one host: every gig of an act answers 503 with ``Retry-After``
and a page, switched by one root-owned file the gigs test for (no nginx reload), until
``off``. Deploys and rollbacks leave it as it is; their checks through nginx then expect that
503 (:func:`backstage.operations.health.via_gig`), their checks through the release's own
socket still reach the release."""

from backstage.commands import gig as gig_cmd
from backstage.commands import history
from backstage.commands import maintenance as maintenance_cmd
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations.gig import gig_files
from backstage.operations.steps import Step
from backstage.render import Renderer

SWITCHES = ("on", "off")


def plan_maintenance(production: Production, layout: Layout, observed: Observed,
                     renderer: Renderer, act: str, switch: str,
                     holder: dict) -> tuple[Step, list[str]]:
    """Switch ``act``'s maintenance ``on`` or ``off`` (``holder``: who, when, message); and
    the gig files installed on the way.

    A gig file written before the switch existed (or otherwise out of date) is installed
    first, ``nginx -t`` checked and reloaded once, so that the switch takes effect on it.
    """
    script = Script()
    files = gig_files(production, act, layout, renderer, observed)
    if files:
        gig_cmd.install_gigs(script, layout, files, [], observed.services)
    record = {"time": holder["time"], "by": holder["by"], "act": act,
              "event": f"maintenance {switch}"}
    if switch == "on":
        info = {k: holder[k] for k in ("by", "time", "message")}
        maintenance_cmd.switch_on(script, layout, act,
                                  renderer.maintenance_page(act, holder["message"]), info)
        record["message"] = holder["message"]
    else:
        maintenance_cmd.switch_off(script, layout, act)
    history.append(script, layout, record)
    return Step("maintenance", f"maintenance {switch}", script.text()), sorted(files)
