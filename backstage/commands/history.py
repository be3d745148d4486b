"""Commands that append to a production's history on a host: one JSON object a line."""

import json

from backstage.commands.shell import Script, q
from backstage.model import Layout


def append(script: Script, layout: Layout, record: dict) -> Script:
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return script.raw(f"printf '%s\\n' {q(line)} >> {q(layout.history)}")
