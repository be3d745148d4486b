"""Plan layer: what must change on a host, as a pure function of desired and observed state.

:mod:`backstage.plan.observed` reads the one probe a host answers; :mod:`backstage.plan.stage`
and :mod:`backstage.plan.deploy` turn model + observations into :class:`Step` objects, each one
remote command (and, for uploads, the bytes for its stdin). Nothing here talks to a host.
"""

from backstage.plan.steps import Step

__all__ = ["Step"]
