"""Errors of the Python API a user can act on (bad names and arguments are ``ValueError``)."""

from backstage.errors import BackstageError


class VenueError(BackstageError):
    """A venue could not be opened or built: not a venue, a folder in the way, a failed build."""


class ActFailed(BackstageError):
    """An act did not start, stop or prepare; the message ends with the last lines of its log."""
