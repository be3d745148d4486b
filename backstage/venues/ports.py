"""Ports of acts: deterministic, recorded in the venue, never found by scanning.

An act's preferred port is a hash of (the venue's absolute path, the act's slug) into
20000-29999, below Linux's ephemeral range (32768-60999) so outgoing connections never hold it.
On the venue's host, under a lock, the helper (``remote/venueside.py``, ``allocate``)
probes linearly from there, skipping ports recorded by the venue's other acts, ports recorded by
other venues on the host (``$XDG_STATE_HOME/backstage/ports.json``, default
``~/.local/state``), and ports it cannot bind on 127.0.0.1; it records the result in the venue's
``ports.json`` before the act is launched. A recorded port is the act's for good: after a
restart of Python, of the Emperor or of the machine the act gets the same one.
"""

import hashlib

PORT_LOW = 20000
PORT_HIGH = 29999


def preferred_port(venue_root: str, act_slug: str) -> int:
    digest = hashlib.sha256(f"{venue_root}\0{act_slug}".encode()).digest()
    return PORT_LOW + int.from_bytes(digest[:8], "big") % (PORT_HIGH - PORT_LOW + 1)
