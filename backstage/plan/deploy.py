"""Plan ``deploy-act`` on one host: venue if its requirements changed, release, switch.

Three remote commands at most after the probe: build the venue (only when its digest is new),
upload and prepare the release, then start its vassal, health-check it through its own socket,
switch traffic, retire the old vassal and update the gigs. When the code, the env file, the
vassal and the gigs are all as desired, the plan is empty.
"""

from collections.abc import Callable
from dataclasses import dataclass

from backstage.artefacts.bundle import Bundle
from backstage.commands import gig as gig_cmd
from backstage.commands import history, lock
from backstage.commands import release as release_cmd
from backstage.commands import sess as sess_cmd
from backstage.commands import venue as venue_cmd
from backstage.commands.shell import Script
from backstage.model import Layout, Production
from backstage.plan import checks
from backstage.plan.observed import Observed
from backstage.plan.releases import releases_to_delete
from backstage.plan.steps import Step
from backstage.render import Renderer
from backstage.util import sha256


@dataclass
class DeployInputs:
    """What the workstation prepared for a deploy of one act (the same for every host)."""

    act: str
    bundle: Bundle
    venue_digest: str
    venue_wheels: Callable[[set[str]], bytes]
    lock: dict

    @property
    def by(self) -> str:
        return self.lock["by"]

    @property
    def time(self) -> str:
        return self.lock["time"]


def health_spec(production: Production, act_name: str) -> dict:
    act = production.acts[act_name]
    gigs = production.gigs_of(act_name)
    host = act.health.host or (production.gigs[gigs[0]].domains[0] if gigs else "localhost")
    return {"host": host, "path": act.health.path, "status": act.health.status,
            "timeout": act.health.timeout, "retries": act.health.retries}


def gig_files(production: Production, act: str, layout: Layout, renderer: Renderer,
              observed: Observed) -> dict[str, str]:
    """Rendered gig files of an act that differ from what the host has."""
    files = {layout.gig_conf(g): renderer.gig(layout, g) for g in production.gigs_of(act)}
    return {path: text for path, text in files.items() if observed.digest(path) != sha256(text)}


def plan_deploy(production: Production, host: str, layout: Layout, observed: Observed,
                renderer: Renderer, inputs: DeployInputs, env_text: str) -> list[Step]:
    act_name = inputs.act
    act = production.acts[act_name]
    python = production.venues[act.venue].python or production.hosts[host].python
    checks.stage_ready(host, observed)
    checks.not_locked(host, observed)
    venue_dir = layout.venue_dir(act.venue, inputs.venue_digest)
    owner = (f"{observed.data['user']}:{production.hosts[host].nginx_group}"
             if layout.kind == "system" else None)

    def vassal_ini(release):
        return renderer.vassal(layout, act_name, release, venue_dir, owner)

    current = observed.current_release(act_name)
    gigs = gig_files(production, act_name, layout, renderer, observed)
    if (current and current.endswith(inputs.bundle.digest[:8])
            and observed.vassal_digest(act_name, current) == sha256(vassal_ini(current))
            and observed.env_digest(act_name) == sha256(env_text) and not gigs):
        return []

    steps = []
    script = lock.acquire(Script(), layout, inputs.lock)
    if not observed.venue_built(act.venue, inputs.venue_digest):
        checks.venue_matches_emperor(host, act.venue, observed.python, observed.stage_python)
        venue_cmd.build_venue(script, layout, act.venue, inputs.venue_digest, python)
        wheels = observed.wheels
        steps.append(Step("venue", f"build venue {act.venue}-{inputs.venue_digest}",
                          script.text(), lambda: inputs.venue_wheels(wheels)))
        script = Script()

    release = inputs.bundle.release
    env_bytes = env_text.encode()
    release_cmd.unpack_release(script, layout, act_name, release, len(env_bytes))
    release_cmd.prepare_release(script, layout, act_name, release, act.settings, venue_dir,
                                act.manage, list(act.databases))
    steps.append(Step("release", f"upload release {release} ({inputs.bundle.files} files), "
                      "check, migrate, collectstatic", script.text(),
                      lambda: env_bytes + inputs.bundle.data))

    script = Script()
    sess_cmd.start_vassal(script, layout, act_name, release, vassal_ini(release))
    sess_cmd.health_check(script, layout, production.hosts[host].python, act_name, release,
                          health_spec(production, act_name))
    sess_cmd.switch(script, layout, act_name, release)
    sess_cmd.retire(script, layout, act_name,
                    [r for r in observed.vassal_releases(act_name) if r != release])
    sess_cmd.delete_releases(script, layout, act_name, releases_to_delete(
        observed, act_name, act.keep_releases, release, current))
    gig_cmd.install_gigs(script, layout, gigs, [], observed.services)
    for gig in production.gigs_of(act_name):
        check = {**health_spec(production, act_name), "host": production.gigs[gig].domains[0]}
        sess_cmd.health_via_nginx(script, production.hosts[host].python,
                                  production.gigs[gig].port or layout.http_port, check)
    history.append(script, layout, {"time": inputs.time, "event": "deploy", "act": act_name,
                                    "release": release, "previous": current, "by": inputs.by})
    lock.release(script, layout, inputs.lock["token"])
    steps.append(Step("switch", f"start {act_name}@{release}, health-check, switch traffic",
                      script.text()))
    return steps
