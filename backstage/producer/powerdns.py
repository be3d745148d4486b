"""PowerDNS's HTTP API (``/api/v1``): read a zone's RRsets, PATCH some of them.

Only the two calls the Producer needs, through ``requests``; the API key travels in the
``X-API-Key`` header and is never part of an error or a log line.
"""

import requests

from backstage.errors import ProducerError
from backstage.model.inventory import Producer
from backstage.model.secrets import Secret, reveal


class PowerDNS:
    """One PowerDNS server, as ``[producer]`` describes it."""

    def __init__(self, producer: Producer, api_key: Secret):
        self.producer = producer
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = reveal(api_key)

    def _url(self, zone: str) -> str:
        base = self.producer.api_url.rstrip("/")
        return f"{base}/api/v1/servers/{self.producer.server_id}/zones/{zone}."

    def _call(self, method: str, zone: str, **kwargs) -> requests.Response:
        where = f"producer {self.producer.api_url}"
        try:
            response = self.session.request(method, self._url(zone),
                                            timeout=self.producer.timeout, **kwargs)
        except requests.RequestException as error:
            raise ProducerError(f"{where}: cannot reach PowerDNS: {type(error).__name__}") \
                from None
        if response.status_code in (401, 403):
            raise ProducerError(f"{where}: PowerDNS refused the API key (HTTP "
                                f"{response.status_code}); check producer.api_key_secret")
        if response.status_code == 404:
            raise ProducerError(f"{where}: PowerDNS has no zone {zone!r} (producer.zones)")
        if response.status_code >= 300:
            raise ProducerError(f"{where}: PowerDNS answered HTTP {response.status_code} to "
                                f"{method} zone {zone!r}: {_api_error(response)}")
        return response

    def rrsets(self, zone: str) -> list[dict]:
        """The zone's RRsets as PowerDNS lists them (name, type, ttl, records, comments)."""
        try:
            return list(self._call("GET", zone).json()["rrsets"])
        except (ValueError, KeyError, TypeError):
            raise ProducerError(f"producer {self.producer.api_url}: PowerDNS's answer for zone "
                                f"{zone!r} is not a zone") from None

    def patch(self, zone: str, rrsets: list[dict]) -> None:
        """Change these RRsets of the zone in one request (PowerDNS applies all or none)."""
        self._call("PATCH", zone, json={"rrsets": rrsets})


def _api_error(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except ValueError:
        return response.text[:200].replace("\n", " ")
