"""The venue API under :mod:`backstage.shortcuts`: venues and acts, here or on a host.

A package of its own, apart from the deploy stack. Here a *venue* is a folder with a
virtualenv and a uWSGI Emperor of its own (a user-level daemon), and an *act* is a Django
project in it, run by that Emperor as a vassal on a port of 127.0.0.1. In the deploy stack
(``backstage.model``, ``backstage.operations``, ...) "venue" means only a production's virtualenv on
a host. This package depends on the command-building core (:mod:`backstage.commands.shell`),
the transports and the workstation's wheels, never on the deploy stack's operations.
The same command text (:mod:`backstage.venues.commands`) runs on this machine through
``LocalTransport`` or on a production's host through ``SSHTransport``.

- :mod:`backstage.venues.venue`: ``new_venue``, ``Venue``, ``venue_from_cwd``
- :mod:`backstage.venues.act`: ``new_act``, ``Act``
- :mod:`backstage.venues.ports`: how an act's port is chosen and kept
- :mod:`backstage.venues.place`: where a venue lives (local, or a host of a production)
"""

from backstage.venues.act import Act, new_act
from backstage.venues.errors import ActFailed, VenueError
from backstage.venues.venue import Venue, new_venue, venue_from_cwd

__all__ = ["Act", "ActFailed", "Venue", "VenueError", "new_act", "new_venue", "venue_from_cwd"]
