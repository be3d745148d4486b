"""Backstage's tasks for ``fab`` in this repository: ``fab --list``, ``fab deploy-act storefront``."""

from backstage.tasks import ns  # noqa: F401  (fab looks for a collection named ns)
