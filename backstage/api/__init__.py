"""The Python API under :mod:`backstage.shortcuts`: venues and acts, here or on a host.

A *venue* is a folder with a virtualenv and a uWSGI Emperor of its own (a user-level daemon);
an *act* is a Django project in it, run by that Emperor as a vassal on a port of 127.0.0.1.
The same command text (:mod:`backstage.commands.venue_api`) runs on this machine through
``LocalTransport`` or on a production's host through ``SSHTransport``.

- :mod:`backstage.api.venue`: ``new_venue``, ``Venue``, ``venue_from_cwd``
- :mod:`backstage.api.act`: ``new_act``, ``Act``
- :mod:`backstage.api.ports`: how an act's port is chosen and kept
- :mod:`backstage.api.place`: where a venue lives (local, or a host of a production)
"""

from backstage.api.act import Act, new_act
from backstage.api.errors import ActFailed, VenueError
from backstage.api.venue import Venue, new_venue, venue_from_cwd

__all__ = ["Act", "ActFailed", "Venue", "VenueError", "new_act", "new_venue", "venue_from_cwd"]
