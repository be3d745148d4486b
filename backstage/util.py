"""Small helpers shared by several layers."""

import hashlib
import time


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    """An ISO 8601 UTC timestamp with milliseconds, for history lines."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
