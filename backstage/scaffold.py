"""Scaffold an act into a repository, for ``deploy-act``: the files ``new_act`` puts in a venue,
a secrets file, and the inventory entry that deploys it.

Here the name becomes an inventory name, so it follows the inventory's rule
(``[a-z][a-z0-9-]{0,39}``).
"""

import json
import os
import secrets
from pathlib import Path

from backstage.model import names
from backstage.venues.scaffold import Scaffold, render_act


def scaffold_act(name: str, path=None, secrets_file=None) -> Scaffold:
    """Write the act's Django project into ``path`` (default ``./<name>``), which must be
    missing or empty, and a fresh ``DJANGO_SECRET_KEY`` into ``secrets_file`` (0600) unless
    that file exists. Nothing is written when the name is refused (``ValueError``)."""
    names.name(name)
    scaffold = render_act(name)
    target = Path(path or name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} exists and is not an empty folder; refusing to overwrite it")
    for relative, text in scaffold.files.items():
        file = target / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        file.chmod(scaffold.mode(relative))
    if secrets_file is not None and not Path(secrets_file).exists():
        secrets_path = Path(secrets_file)
        secrets_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n")
    return scaffold


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string for the paths and names used here


def inventory_entry(scaffold: Scaffold, source, secrets_file=None, domain: str | None = None,
                    relative_to=".") -> str:
    """The ``[venues]``, ``[acts]``, ``[databases]`` and ``[gigs]`` tables that deploy the act,
    with paths relative to ``relative_to`` (the inventory's folder)."""
    name = scaffold.name
    domain = names.domain(domain or f"{name}.example.com")

    def rel(path) -> str:
        return os.path.relpath(Path(path).resolve(), Path(relative_to).resolve())

    lines = [
        f"[venues.{name}]",
        f"requirements = {_toml(rel(Path(source) / 'requirements.txt'))}",
        "",
        f"[acts.{name}]",
        f"venue = {_toml(name)}",
        f"source = {_toml(rel(source))}",
        f"settings = {_toml(scaffold.settings)}",
        f"wsgi = {_toml(scaffold.wsgi)}",
    ]
    if secrets_file is not None:
        lines.append(f"secrets = {_toml(rel(secrets_file))}")
    lines += [
        f"databases = [{_toml(scaffold.database)}]",
        'health = { path = "/healthz" }',
        "",
        f"[databases.{scaffold.database}]",
        "",
        f"[gigs.{name}]",
        f"act = {_toml(name)}",
        f"domains = [{_toml(domain)}]",
    ]
    return "\n".join(lines) + "\n"
