"""Backstage's Python face, as django-backstage promised it::

    from backstage.shortcuts import new_venue, new_act
    venue = new_venue('MyVenue', '/tmp')   # creates /tmp/MyVenue and builds its virtualenv
    act = new_act(venue, 'MyAct')          # creates MyVenue/acts/MyAct and launches it under uWSGI
    act.get_uwsgi_port()                   # browse http://localhost:PORT
    act.stop()
    act.start()

The same on a host of a production:
``new_venue('MyVenue', '/srv/venues', host='web1', production='staging')``.
Reopen with ``Venue(path)`` (or ``venue_from_cwd()``): ``venue.acts['MyAct']``.
``scaffold_act`` writes the same act into a repository, for ``deploy-act``.
"""

from backstage.scaffold import inventory_entry, scaffold_act
from backstage.venues import Act, ActFailed, Venue, VenueError, new_act, new_venue, venue_from_cwd

__all__ = [
    "Act",
    "ActFailed",
    "Venue",
    "VenueError",
    "inventory_entry",
    "new_act",
    "new_venue",
    "scaffold_act",
    "venue_from_cwd",
]
