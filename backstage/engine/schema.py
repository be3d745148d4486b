"""What a rollout's migrations were, and what a stopped rollout left of them.

Each host's management steps said, per database, the plan they checked (and what they
migrated): the report carries the last plan said per database and host, and says so when a
host serves its previous release again, or never left it, on a schema that release predates.
"""


def record_migrations(report, runs: dict) -> None:
    """Fill ``report.migration_plans`` and ``report.schema`` from the hosts' runs."""
    for name, run in runs.items():
        plans = {plan.get("database"): plan for plan in run.migration_plans}
        if plans:
            report.migration_plans[name] = list(plans.values())
    applied = sorted({migration for run in runs.values() for done in run.migrated
                      for migration in done.get("migrations", [])})
    old_code = [name for name, outcome in report.outcomes.items()
                if outcome.result in ("reverted", "not switched", "failed")
                and outcome.release_after]
    if applied and old_code:
        report.schema = (f"{', '.join(old_code)}: the previous release serves on a schema it "
                         f"predates: {', '.join(applied)} stay applied and it does not know "
                         "them")
