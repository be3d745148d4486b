"""The bake window: after a host switches, its real traffic decides whether the release
stays (see the host helper's ``bake``: the share of failed requests through nginx since the
switch, against the old release's share before it)."""

import json

from backstage.commands import bake as bake_cmd
from backstage.commands.shell import Script
from backstage.model import Layout, Production

MARKER = "::bake "


def bake_spec(production: Production, act_name: str, layout: Layout, record: dict) -> dict | None:
    """What the host helper's ``bake`` watches on a host; None when the act has no bake
    (``bake = 0``) or no gig (no traffic to watch)."""
    act, gigs = production.acts[act_name], production.gigs_of(act_name)
    if not act.bake or not gigs:
        return None
    return {"logs": [layout.gig_access_log(g) for g in gigs],
            "link": layout.stable_socket(act_name), "seconds": act.bake,
            "max_error_rate": act.max_error_rate, "min_errors": act.bake_min_errors,
            "record": {"event": "bake", "act": act_name, **record}}


def nginx_bake(script: Script, production: Production, act: str, release: str, layout: Layout,
               python: str, record: dict) -> Script:
    """Bake the release just switched to (nothing when the act has no bake)."""
    spec = bake_spec(production, act, layout, record)
    return bake_cmd.bake(script, layout, python, act, release, spec) if spec else script


def read_bake(output: str) -> dict | None:
    """The counts a bake printed in a step's output (its ``::bake`` line), if it ran."""
    found = [line[len(MARKER):] for line in output.splitlines() if line.startswith(MARKER)]
    return json.loads(found[-1]) if found else None


def batch_bakes(batches: list[list[str]], bakes: dict[str, dict]) -> list[dict | None]:
    """Per batch of a rollout, its hosts' bake counts added up (None: no host baked)."""
    totals = []
    for batch in batches:
        baked = [bakes[h] for h in batch if bakes.get(h)]
        totals.append({
            "ok": all(b["ok"] for b in baked),
            "requests": sum(b["requests"] for b in baked),
            "errors": sum(b["errors"] for b in baked),
            "before": {"requests": sum(b["before"]["requests"] for b in baked),
                       "errors": sum(b["before"]["errors"] for b in baked)},
        } if baked else None)
    return totals
