"""Model layer: a production's inventory, validated into plain typed objects.

Nothing here touches the network or any host; the only I/O is reading the inventory file
and checking that the local files it names exist.
"""

import importlib

# Where each name lives: imported on first use (PEP 562), so that a light module of this
# layer (``backstage.model.locate``, ``names``) does not load pydantic and the inventory.
_HOMES = {
    **dict.fromkeys(["Act", "Database", "Gig", "Health", "Host", "Production", "Smoke", "Venue",
                     "load_production"], "backstage.model.inventory"),
    **dict.fromkeys(["Layout", "RunAs", "release_of_link"], "backstage.model.layout"),
}

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


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'backstage.model' has no attribute {name!r}")
