"""Which inventory file a command, the Python API or the venue API means: the one rule."""

import os
from pathlib import Path

from backstage.errors import UsageError


def find_inventory(value: str | os.PathLike | None = None, argument: str = "--inventory") -> Path:
    """The inventory file ``value`` names: a path (a ``.toml`` file, or any file that exists),
    else a production's name, ``inventories/<name>.toml``. Without a value,
    ``$BACKSTAGE_INVENTORY``, else the only file in ``./inventories/``.

    ``argument`` names the value in errors (``--inventory``, or a Python argument). An empty
    value is an error, not the default: an empty variable in a script must not pick a file.
    """
    if value is not None and not str(value).strip():
        raise UsageError(f"{argument}: empty; give a value, or leave {argument} out for its "
                         "default")
    value = value or os.environ.get("BACKSTAGE_INVENTORY")
    if value:
        path = Path(value).expanduser()
        if path.suffix != ".toml" and not path.exists():
            path = Path("inventories") / f"{value}.toml"
        return path
    found = sorted(Path("inventories").glob("*.toml"))
    if len(found) != 1:
        raise UsageError(
            f"{argument}: name an inventory file or production "
            + ("(several in ./inventories/)" if found else "(none found in ./inventories/)")
        )
    return found[0]
