"""Commands that append to a production's history on a host: one JSON object a line."""

import json

from backstage.commands.shell import Script, q
from backstage.model import Layout


def append(script: Script, layout: Layout, record: dict) -> Script:
    """Append a record, stamped with the host's clock at the moment the line is written."""
    fields = json.dumps({k: v for k, v in record.items() if k != "time"}, sort_keys=True,
                        separators=(",", ":"))[1:]
    stamp = '"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"'
    separator = "," if fields != "}" else ""
    return script.raw(f"printf '{{\"time\":\"%s\"{separator}%s\\n' {stamp} {q(fields)} "
                      f">> {q(layout.history)}")
