"""``env``: an act's live environment on a host beside what a deploy would write now.

The host helper answers each key of the live release's env file with its value's sha256, and
the value itself only for keys known to be plain (the inventory's ``env``, Backstage's own
paths and names): secret values, and those of keys the inventory no longer knows, never leave
the host. Keys compare by digest.
"""

from dataclasses import asdict, dataclass

from backstage.model import Layout, Production
from backstage.util import sha256

MASK = "********"
# Backstage's own variables that hold no secret (BACKSTAGE_DATABASES may hold passwords).
PLAIN = ("BACKSTAGE_PRODUCTION", "BACKSTAGE_ALLOWED_HOSTS", "BACKSTAGE_DATA_DIR",
         "BACKSTAGE_MEDIA_ROOT")


@dataclass
class EnvKey:
    """One key: ``same``, ``changed``, ``added`` (a deploy would add it) or ``removed`` (a
    deploy would drop it); values as shown (masked unless plain; None: absent there)."""

    key: str
    state: str
    live: str | None
    inventory: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def plain_keys(production: Production, act: str) -> list[str]:
    """The keys whose values may be shown: the act's ``env`` (not overridden by a secret)
    and Backstage's plain variables."""
    secrets = production.secrets_of(act)
    return [k for k in [*production.acts[act].env, *PLAIN] if k not in secrets]


def env_spec(layout: Layout, act: str, release: str, plain: list[str]) -> dict:
    """The host helper's question: the live release's env file, and which values to send."""
    return {"path": layout.env_file(act, release), "show": plain}


def parse_env(text: str) -> dict[str, str]:
    """An env file as Backstage writes it: ``KEY=value`` lines."""
    return dict(line.split("=", 1) for line in text.split("\n") if "=" in line)


def compare_env(live: dict[str, dict], desired_text: str, plain: list[str]) -> list[EnvKey]:
    """Every key of either side, in the inventory's order then the host's, with its state."""
    desired = parse_env(desired_text)

    def shown(key: str, value: str | None) -> str | None:
        return None if value is None else value if key in plain else MASK

    keys = []
    for key in dict.fromkeys([*desired, *live]):
        here, wanted = live.get(key), desired.get(key)
        if here is None:
            state = "added"
        elif wanted is None:
            state = "removed"
        else:
            state = "same" if here["sha256"] == sha256(wanted) else "changed"
        keys.append(EnvKey(key, state, shown(key, here and here.get("value", MASK)),
                           shown(key, wanted)))
    return keys
