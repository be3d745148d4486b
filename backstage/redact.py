"""Keep secret values out of everything Backstage prints.

Secrets reach a host only inside the act's env file (0600, sent on stdin, never in argv). What
comes back can still echo them: a failed step's output holds manage.py's traceback, a health
check's answer holds the start of a page. Loading an inventory remembers the values of its
acts' secrets files (:func:`remember`); :func:`redact` replaces each of them, as written or as
JSON or Python would escape it, with ``[REDACTED]`` in any text before it is shown.
"""

import json
import threading
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words and numbers all over the output.
MIN_LENGTH = 4

_lock = threading.Lock()
_values: set[str] = set()


def remember(values: Iterable[str]) -> None:
    """Redact these values from now on (in this process)."""
    with _lock:
        for value in values:
            for form in (value, json.dumps(value)[1:-1], repr(value)[1:-1]):
                if len(form) >= MIN_LENGTH:
                    _values.add(form)


def forget() -> None:
    """Forget every remembered value (for tests)."""
    with _lock:
        _values.clear()


def redact(text: str) -> str:
    """``text`` with every remembered secret value replaced by ``[REDACTED]``."""
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)  # a longer secret may hold a shorter
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text
