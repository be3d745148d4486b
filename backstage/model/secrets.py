"""Secret values, masked wherever they are shown, and the redaction of one production's.

An act's secrets reach a host only inside its env file (0600, sent on stdin, never in argv).
Read from the secrets file, each value is a :class:`Secret`: ``str``, ``repr``, f-strings and
logging show ``[REDACTED]``, ``json.dumps`` refuses it, and only the code writing the env file
takes the value out (:func:`reveal`). What comes back from a host can still echo a value (a
failed step's output holds manage.py's traceback, a health check's answer the start of a
page), so a production's :class:`Redactor`, built from its own secrets, replaces them in any
text before it is shown. Two productions in one process each redact their own values.
"""

import json
from collections.abc import Iterable

from pydantic import SecretStr

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words and numbers all over the output.
MIN_LENGTH = 4


class Secret(SecretStr):
    """A secret value: shown as ``[REDACTED]``; :func:`reveal` gives the value."""

    def _display(self) -> str:  # pydantic's documented hook for str() and repr()
        return REDACTED


def reveal(value: object) -> object:
    """A Secret's value, any other value as it is: for the env file only (and for
    ``json.dumps(..., default=reveal)`` there)."""
    if isinstance(value, Secret):
        return value.get_secret_value()
    if isinstance(value, str):
        return value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Redactor:
    """Replaces given secret values, as written or as JSON or Python would escape them,
    with ``[REDACTED]``."""

    def __init__(self, values: Iterable[Secret | str] = ()):
        forms = set()
        for secret in values:
            value = secret.get_secret_value() if isinstance(secret, Secret) else secret
            forms |= {form for form in (value, json_escaped(value), repr(value)[1:-1])
                      if len(form) >= MIN_LENGTH}
        self._forms = sorted(forms, key=len, reverse=True)  # a longer secret may hold a shorter

    def __call__(self, text: str) -> str:
        """``text`` with every value replaced by ``[REDACTED]``."""
        for form in self._forms if text else ():
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"


def json_escaped(value: str) -> str:
    return json.dumps(value)[1:-1]
