"""Operations layer: one module per operation, each a pure function of the model and the facts
a host's probe gave (:mod:`backstage.facts`) returning :class:`Step` objects, each one remote
command (and, for uploads, the bytes for its stdin). Nothing here talks to a host: the engine
runs the steps. Shared by several: :mod:`checks` (refusals), :mod:`releases` (which releases
to keep or roll back to), :mod:`health`, :mod:`changes` and :mod:`preview` (``plan``'s words).
"""

from backstage.operations.steps import Step

__all__ = ["Step"]
