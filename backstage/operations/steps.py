"""A step: one remote command, with what it is for and, optionally, bytes for its stdin."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Step:
    name: str
    summary: str
    command: str
    payload: Callable[[], bytes] | None = None
