"""Notifications: one JSON document per deploy, rollback or maintenance change, posted to the
inventory's ``[notify]`` webhooks. A webhook that fails (refused, timed out, not 2xx) is tried
again ``retries`` times, then reported; it never fails the operation it tells of."""

import time
from urllib.parse import urlsplit

import requests

from backstage.model.inventory import Notify

RETRY_PAUSE = 0.5  # seconds, times the attempt's number


def summary(document: dict) -> str:
    """One line for people (Slack's ``text``)."""
    act, event = document["act"], document["event"]
    if event == "maintenance":
        return f"{document['production']}: {act} maintenance {document['maintenance']} " \
               f"({document['by']})"
    was = f" (was {document['previous']})" if document.get("previous") else ""
    return (f"{document['production']}: {event} of {act} {document['outcome']}: "
            f"{document.get('release') or '-'}{was} on {', '.join(document['hosts'])} "
            f"({document['by']})")


def payload(notify: Notify, document: dict) -> dict:
    return {"text": summary(document)} if notify.format == "slack" else document


def where(url: str) -> str:
    """A webhook as it is shown: scheme and host only (its path may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def post(notify: Notify, url: str, body: dict) -> str | None:
    """Post one document, retrying; None when it was taken, else why not."""
    why = None
    for attempt in range(notify.retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE * attempt)
        try:
            response = requests.post(url, json=body, timeout=notify.timeout)
        except requests.RequestException as error:
            why = type(error).__name__
            continue
        if 200 <= response.status_code < 300:
            return None
        why = f"answered {response.status_code}"
    return why


def send(notify: Notify | None, document: dict) -> list[str]:
    """Post ``document`` to every webhook; a line for each that failed."""
    if notify is None:
        return []
    body = payload(notify, document)
    failed = [(url, post(notify, url, body)) for url in notify.webhooks]
    return [f"notify {where(url)} failed ({why}, {notify.retries + 1} attempts)"
            for url, why in failed if why]
