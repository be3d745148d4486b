"""Commands that append to a production's history on a host: one JSON object a line."""

import json

from backstage.commands.shell import Script, argv, q
from backstage.model import Layout

# How many entries a host's history keeps (a deploy's cleanup trims it; docs/internals.md, "What
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


def read(layout: Layout, limit: int) -> str:
    """The last ``limit`` entries (nothing when there is no history yet), as a bash script: a
    host with become = "sudo" runs it as ``sudo -n -- bash``, which the README's sudo rule
    allows (``sudo -n -- tail`` would be refused, and the history shown empty)."""
    return Script().raw(f"{argv('tail', '-n', int(limit), layout.history)} 2>/dev/null "
                        "|| true").text()
