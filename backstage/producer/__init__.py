"""The workstation's clients of the services a production's gigs rely on beyond its hosts:
the Producer's DNS (PowerDNS's HTTP API, :mod:`backstage.producer.powerdns`) and the ACME
directory its certificates come from (:mod:`backstage.producer.acme`).

Each answers with plain data and raises :class:`~backstage.errors.ProducerError` (one line
naming the producer or directory) for anything that went wrong; what to change is decided
by :mod:`backstage.operations.dns` and :mod:`backstage.operations.certs`.
"""
