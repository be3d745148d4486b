"""Schema-aware rollback: a release's code against the migrations applied to its databases.

A release records the migration state it was deployed with in its own code: a deploy
migrates each database to the leaves of the release's migration graph, so the migrations a
release knows are the nodes of that graph. Before a rollback switches, the target release's
code is asked (read-only, :mod:`backstage.remote.managesteps`' ``unknown-migrations``) which
applied migrations it does not know. Then the rollback is refused naming them, or, with
``--migrate-back``, the live release's code unapplies them first (``migrate APP TARGET``, refused
when one cannot be reversed), or, with ``--force``, the code goes back anyway, said loudly.
"""

import json

from backstage.commands import release as release_cmd
from backstage.commands.release import Manage
from backstage.commands.shell import Script
from backstage.errors import BackstageError
from backstage.facts.migrations import plan_lines
from backstage.facts.observed import Observed
from backstage.model import Layout, Production, RunAs
from backstage.operations import checks, snapshots
from backstage.operations.deploy import DeployInputs, migrated_here
from backstage.operations.steps import Step
from backstage.render import Renderer
from backstage.util import utc_now


def databases_of(production: Production, act: str) -> dict[str, str]:
    """The logical databases a deploy of the act migrates (host-local and shared), each
    with the act's Django alias for it."""
    return {**migrated_here(production, act, shared=False),
            **migrated_here(production, act, shared=True)}


def run_as_of(production: Production, host: str, layout: Layout, observed: Observed,
              act: str) -> RunAs | None:
    if layout.kind != "system":
        return None
    return checks.act_user(host, observed, production.act_user(act),
                           production.hosts[host].nginx_group)


def manage_in(production: Production, layout: Layout, act: str, release: str) -> Manage:
    """How manage.py runs in a release already on the host, with the act's venue."""
    venue = layout.venue_link(production.acts[act].venue)
    return Manage.of(production, act, layout, release, venue)


def unknown_step(production: Production, host: str, layout: Layout, observed: Observed,
                 act: str, target: str) -> Step | None:
    """A read-only command: the applied migrations the target release's code does not know
    (None: the act migrates no database)."""
    databases = databases_of(production, act)
    if not databases:
        return None
    script = release_cmd.manage_steps(
        Script(), layout, act, target, manage_in(production, layout, act, target),
        [["schema", "unknown-migrations", {"databases": databases}]],
        run_as_of(production, host, layout, observed, act))
    return Step("schema", f"read the migrations {act}@{target} does not know", script.text())


def read_unknown(stdout: str) -> dict:
    """managesteps' answer: database -> {"alias", "unknown": ["app.name"], "targets"}, only
    the databases with migrations the release does not know."""
    lines = stdout.strip().splitlines()
    found = json.loads(lines[-1]) if lines else {}
    return {database: entry for database, entry in found.items() if entry["unknown"]}


def decide(host: str, act: str, target: str, unknown: dict, migrate_back: bool,
           force: bool) -> str | None:
    """Refuse a rollback onto a schema the target predates, unless ``migrate_back`` or
    ``force``; what the report says about the schema (None: nothing to say)."""
    if not unknown:
        return None
    names = ", ".join(dict.fromkeys(m for entry in unknown.values() for m in entry["unknown"]))
    if migrate_back:
        return f"migrated back: {names} unapplied"
    if force:
        return (f"FORCED: {act}@{target} runs on a schema it predates: {names} stay applied "
                "and it does not know them")
    raise BackstageError(f"{host}: {act}@{target} predates migrations applied to its "
                         f"databases: {names}; rollback --migrate-back unapplies them first, "
                         "rollback --force rolls the code back anyway")


def migrate_back(script: Script, production: Production, layout: Layout, act: str,
                 current: str, unknown: dict, run_as: RunAs | None) -> Script:
    """Unapply, with the live release's code (which has them), the migrations the target does
    not know, each database to the target's last migration per app."""
    manage = manage_in(production, layout, act, current)
    snapshots.before_migrate(script, production, layout, act, current, manage,
                             {database: entry["alias"] for database, entry in unknown.items()},
                             run_as, utc_now(), if_pending=False)  # a way back from the way back
    databases = {database: {"alias": entry["alias"], "targets": entry["targets"]}
                 for database, entry in unknown.items()}
    return release_cmd.manage_steps(script, layout, act, current, manage,
                                    [["migrate back", "migrate-back", {"databases": databases}]],
                                    run_as)


def plan_step(production: Production, host: str, layout: Layout, observed: Observed,
              renderer: Renderer, inputs: DeployInputs, env_text: str) -> Step | None:
    """``plan``: a command asking the new release's code, in a scratch copy on the host,
    which migrations a deploy would apply to each database the act migrates (None: it
    migrates none, or its venue is not built yet, so Django cannot run there)."""
    act = production.acts[inputs.act]
    databases = databases_of(production, inputs.act)
    if not databases or not observed.venue_built(act.venue, inputs.venue_digest):
        return None
    scratch = f"{inputs.release}.backstage-new"
    manage = Manage.of(production, inputs.act, layout, scratch,
                       layout.venue_dir(act.venue, inputs.venue_digest))
    env = env_text.encode()
    script = release_cmd.plan_migrations(
        Script(), layout, inputs.act, scratch, manage, len(env),
        renderer.settings_modules(inputs.act), databases,
        run_as_of(production, host, layout, observed, inputs.act))
    return Step("migrations", f"ask {inputs.act}@{inputs.release} which migrations it would "
                "apply", script.text(), lambda: env + inputs.bundle.full())


def plan_text(plan, step: Step | None, plans: list[dict], migrates: bool) -> str:
    """The plan's lines on migrations: what the new release would apply to each database
    (``migrates``: the act migrates any), or why that is not known yet."""
    if plan.noop or plan.repair or not migrates:
        return ""
    if step is None:
        return "  migrate  not known until the venue is built (the deploy checks them)\n"
    return "".join(f"  migrate  {line}\n" for line in plan_lines(plans))
