"""Read an act's secrets file: ``KEY=value`` lines, ``#`` comments and blank lines."""

from pathlib import Path

from backstage.errors import InventoryError
from backstage.model import names
from backstage.model.secrets import Secret


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    try:
        # Split at "\n" only, as the env file on the host and uWSGI's for-readline do.
        lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path, None, f"cannot read: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        try:
            if not sep:
                raise ValueError("expected KEY=value")
            values[names.env_key(key)] = names.env_value(value)
        except ValueError as exc:
            # The value may be a secret: name the line and key, never echo the value.
            raise InventoryError(path, f"line {number}", str(exc)) from None
    return values


def read_secrets(path: Path) -> dict[str, Secret]:
    """An act's secrets file, each value a :class:`Secret` (shown masked)."""
    return {key: Secret(value) for key, value in read_env_file(path).items()}
