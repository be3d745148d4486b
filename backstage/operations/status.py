"""``status``: which acts to look at on a host (the helper's question and answer are in
:mod:`backstage.facts.status`)."""

from backstage.model import Production


def status_acts(production: Production, host: str, act_name: str | None) -> list[str]:
    """The acts ``status`` shows on a host: ``act_name`` if it plays there, else all there."""
    return [a for a in ([act_name] if act_name else production.acts_on(host))
            if a in production.acts_on(host)]
