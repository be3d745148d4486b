"""Commands that switch an act's maintenance on and off on a host.

The switch is one file, the act's page in root's ``maintenance/`` folder: each of the act's
gigs tests for it on every request (templates/gig.conf.j2), so renaming it into place or
removing it changes what visitors get at once, with no nginx reload. Its details (who, when,
the message) are written first beside it, and removed last, so ``status`` never sees the page
without them.
"""

import json

from backstage.commands.shell import Script
from backstage.model import Layout


def switch_on(script: Script, layout: Layout, act: str, page: str, info: dict) -> Script:
    script.step("maintenance on")
    script.run("install", "-d", "-m", "755", layout.maintenance_dir)
    script.write_file(layout.maintenance_info(act), json.dumps(info, sort_keys=True))
    return script.write_file(layout.maintenance_page(act), page)


def switch_off(script: Script, layout: Layout, act: str) -> Script:
    script.step("maintenance off")
    script.run("rm", "-f", "--", layout.maintenance_page(act))
    return script.run("rm", "-f", "--", layout.maintenance_info(act))
