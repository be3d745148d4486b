"""The bake after a switch: the host helper watches the act's traffic through nginx."""

from backstage.commands import hostside
from backstage.commands.release import mark_bad
from backstage.commands.shell import Script
from backstage.model import Layout


def bake(script: Script, layout: Layout, python: str, act: str, release: str,
         spec: dict) -> Script:
    """Watch the act's requests since the switch (``spec``: see the helper's ``bake``); past
    the error rate, mark the release bad and fail the step (the rollout then reverts). Its
    counts go to stdout (``::bake`` line) and history either way."""
    script.step("bake")
    # Its answer is kept, then printed: a workstation gone meanwhile (a broken pipe) stops
    # the script there, not the helper, so its verdict is never mistaken for a failure.
    run = hostside(layout, python, "bake", {**spec, "history": layout.history})
    return script.raw(f"if answer=$({run}); then printf '%s\\n' \"$answer\"; else "
                      f"{mark_bad(layout, act, release)}; printf '%s\\n' \"$answer\"; exit 1; fi")
