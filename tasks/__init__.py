"""Tasks layer: the Fabric/Invoke tasks, thin wrappers over :class:`backstage.Production`.

``ns`` is the collection both ``fab`` (through the repository's ``fabfile.py``) and the
``backstage`` program (:mod:`backstage.tasks.program`) expose.
"""

from backstage.tasks.tasks import ns

__all__ = ["ns"]
