"""The act's workstation hooks (``before_deploy``, ``after_deploy``, ``after_rollback``): run
here with ``bash -c``, this process's environment plus the hook's ``BACKSTAGE_*`` variables
(see :mod:`backstage.operations.hooks`), their output passed through."""

import os
import subprocess

from backstage.engine.report import Reporter
from backstage.errors import BackstageError
from backstage.model import Production


def run_hook(production: Production, act: str, name: str, variables: dict[str, str],
             reporter: Reporter, fatal: bool) -> None:
    """Run the act's hook ``name`` if it has one, its output on stderr (``--json`` keeps
    stdout). When it fails: a BackstageError (``fatal``: before the deploy, nothing is
    started), else a line reported."""
    command = getattr(production.acts[act].hooks, name)
    if command is None:
        return
    reporter.info(f"{name} hook of {act}")
    try:
        status = subprocess.run(["bash", "-c", command], env={**os.environ, **variables},
                                stdout=2, check=False).returncode
    except OSError as error:
        status = f"could not run: {error}"
    if status == 0:
        return
    message = f"the {name} hook of {act} failed (exit {status})"
    if fatal:
        raise BackstageError(f"{message}: nothing was deployed")
    reporter.info(f"{message}; what was done is kept")
