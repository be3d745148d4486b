"""The migration plans a host's management steps said (``::migrations <json>`` lines on
stderr, :mod:`backstage.remote.managesteps`), read into dicts, and said in words."""

import json

PLAN_MARKER = "::migrations "
MIGRATED_MARKER = "::migrated "


def said_plans(stderr: str, marker: str = PLAN_MARKER) -> list[dict]:
    """Each database's plan, in the order said: ``{"database", "kind", "migrations": [
    {"migration": "app.name", "backwards", "operations": [{"description", "operation",
    "kind", "why"}]}]}``; a line that is not JSON is left out. With ``MIGRATED_MARKER``:
    what was migrated, ``{"database", "migrations": ["app.name", ...]}``."""
    found = []
    for line in stderr.splitlines():
        if line.startswith(marker):
            try:
                found.append(json.loads(line[len(marker):]))
            except ValueError:
                continue
    return found


def plan_lines(plans: list[dict]) -> list[str]:
    """Per database, the migrations to apply and each operation with its kind, in words."""
    lines = []
    for plan in plans:
        if not plan.get("migrations"):
            lines.append(f"{plan.get('database')}: no migrations to apply")
            continue
        lines.append(f"{plan.get('database')}: {len(plan['migrations'])} migration(s), "
                     f"{plan.get('kind')}")
        for migration in plan["migrations"]:
            nothing = " (its app is new to this database: nothing to lose)" \
                if migration.get("fresh") else "" if migration.get("operations") \
                else " (changes nothing here)"
            lines.append(f"  {migration.get('migration')}{nothing}")
            lines += [f"    {op.get('kind')}: {op.get('description')} ({op.get('why')})"
                      for op in migration.get("operations", [])]
    return lines
