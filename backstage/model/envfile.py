"""Read an act's secrets: ``KEY=value`` lines, ``#`` comments and blank lines, from a file or
from what a command prints on the workstation (``secrets_command``: a password manager's)."""

import subprocess
from functools import cache
from pathlib import Path

from backstage.errors import InventoryError
from backstage.model import names
from backstage.model.secrets import Secret


def read_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path, None, f"cannot read: {exc}") from None
    return parse_env_text(text, path)


def parse_env_text(text: str, source: Path, where: str = "") -> dict[str, str]:
    """``KEY=value`` lines (``where``: the key naming their source, e.g. a secrets_command)."""
    values = {}
    # Split at "\n" only, as the env file on the host and uWSGI's for-readline do.
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
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
            raise InventoryError(source, f"{where}{': ' if where else ''}line {number}",
                                 str(exc)) from None
    return values


@cache
def command_output(command: str, cwd: Path, inventory: Path, key: str) -> str:
    """What a secrets command prints, run once per process by bash in the inventory's folder,
    its stdin and stderr the user's (a password manager may ask). Never logged."""
    try:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                              text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InventoryError(inventory, key, f"cannot run: {exc}") from None
    if done.returncode != 0:
        raise InventoryError(inventory, key, f"exited {done.returncode} (its own error is "
                             "above); no secret was read")
    return done.stdout


def read_secrets_command(command: str, inventory: Path, key: str) -> dict[str, Secret]:
    """The ``KEY=value`` lines a secrets command prints, each value a :class:`Secret`."""
    text = command_output(command, inventory.parent, inventory, key)
    return {k: Secret(v) for k, v in parse_env_text(text, inventory, key).items()}


def read_secrets(path: Path) -> dict[str, Secret]:
    """An act's secrets file, each value a :class:`Secret` (shown masked)."""
    return {key: Secret(value) for key, value in read_env_file(path).items()}
