"""Commands that append to a production's history on a host: one JSON object a line."""

import json

from backstage.commands.shell import Script, q
from backstage.model import Layout

# How many entries a host's history keeps (a deploy's cleanup trims it; README, "What
# Backstage keeps on a host").
HISTORY_LIMIT = 1000


def append(script: Script, layout: Layout, record: dict) -> Script:
    """Append a record, stamped with the host's clock at the moment the line is written."""
    fields = json.dumps({k: v for k, v in record.items() if k != "time"}, sort_keys=True,
                        separators=(",", ":"))[1:]
    stamp = '"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"'
    separator = "," if fields != "}" else ""
    return script.raw(f"printf '{{\"time\":\"%s\"{separator}%s\\n' {stamp} {q(fields)} "
                      f">> {q(layout.history)}")


def trim(script: Script, layout: Layout, keep: int = HISTORY_LIMIT) -> Script:
    """Keep the newest ``keep`` entries: written beside the history, renamed over it."""
    path, tmp = q(layout.history), q(layout.history + ".backstage-new")
    return script.raw(f'if [ "$(wc -l < {path})" -gt {int(keep)} ]; then '
                      f"tail -n {int(keep)} {path} > {tmp} && mv -f {tmp} {path}; fi")


def tail(layout: Layout, limit: int) -> str:
    """The last ``limit`` entries (nothing, not an error, on a host without history yet)."""
    return f"tail -n {int(limit)} {q(layout.history)} 2>/dev/null || true"
