"""Model layer: a production's inventory, validated into plain typed objects.

Nothing here touches the network or any host; the only I/O is reading the inventory file
and checking that the local files it names exist.
"""

from backstage.model.inventory import (
    Act,
    Database,
    Gig,
    Health,
    Host,
    Production,
    Smoke,
    Venue,
    load_production,
)
from backstage.model.layout import Layout, RunAs, release_of_link

__all__ = [
    "Act",
    "Database",
    "Gig",
    "Health",
    "Host",
    "Layout",
    "Production",
    "RunAs",
    "Smoke",
    "Venue",
    "load_production",
    "release_of_link",
]
