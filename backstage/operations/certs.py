"""Certificates of ``tls = "acme"`` gigs: which gigs, which are due, the DNS-01 TXT records
through the Producer, and the files a host gets (pure: no network, no host)."""

import datetime

from cryptography import x509

from backstage.commands import certs as certs_cmd
from backstage.commands.shell import Script
from backstage.model import Layout, Production
from backstage.operations.dns import fqdn, mark
from backstage.operations.steps import Step


def acme_gigs(production: Production, act: str | None = None) -> list[str]:
    """The gigs (of ``act``, or all) whose certificate comes from the ACME directory."""
    return [g for g, gig in production.gigs.items()
            if gig.tls == "acme" and (act is None or gig.act == act)]


def not_after(fullchain: str) -> datetime.datetime:
    """When the chain's first certificate (the gig's own) expires."""
    return x509.load_pem_x509_certificate(fullchain.encode()).not_valid_after_utc


def names_of(fullchain: str) -> set[str]:
    """The DNS names the chain's first certificate is for."""
    certificate = x509.load_pem_x509_certificate(fullchain.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(names.value.get_values_for_type(x509.DNSName))


def due(fullchain: str | None, domains: tuple[str, ...], days: int,
        now: datetime.datetime) -> bool:
    """Whether a gig needs a new certificate: none yet, one that expires within ``days``, or
    one for other names than the gig's domains (a domain added or removed)."""
    return (fullchain is None or not_after(fullchain) - now < datetime.timedelta(days=days)
            or names_of(fullchain) != set(domains))


def challenge_patches(production: Production, records: dict[str, list[str]],
                      remove: bool = False) -> dict[str, list[dict]]:
    """Per zone, the TXT RRsets of DNS-01 challenges (published with Backstage's mark, or
    deleted) in one PATCH each."""
    producer, patches = production.producer, {}
    for name, values in sorted(records.items()):
        rrset = {"name": fqdn(name), "type": "TXT", "changetype": "DELETE"} if remove else {
            "name": fqdn(name), "type": "TXT", "ttl": 1, "changetype": "REPLACE",
            "records": [{"content": f'"{v}"', "disabled": False} for v in values],
            "comments": [mark(production)]}
        patches.setdefault(producer.zone_of(name.rstrip(".")), []).append(rrset)
    return patches


def http01_answers(layout: Layout, answers: dict[str, list[str]], remove: bool = False) -> Step:
    """The step that publishes HTTP-01 answers (token -> [key authorization]) on a host, or
    withdraws them."""
    if remove:
        return Step("challenge", "withdraw the HTTP-01 answers",
                    certs_cmd.withdraw_challenges(Script(), layout, list(answers)).text())
    return Step("challenge", f"publish {len(answers)} HTTP-01 answer(s)",
                certs_cmd.publish_challenges(Script(), layout, {t: v[0] for t, v in
                                                                answers.items()}).text())


def certificate_files(layout: Layout, gig: str, certificate: tuple[str, str]) -> dict[str, str]:
    """What a host holds of a gig's certificate: the full chain and the key (written 0600)."""
    fullchain, key = certificate
    return {layout.tls_certificate(gig): fullchain, layout.tls_key(gig): key}


WARN_DAYS = 14  # ``status`` warns about certificates expiring sooner


def certificate_paths(production: Production, layout: Layout, host: str) -> dict[str, str]:
    """Per HTTPS gig played on ``host``, the certificate (full chain) nginx serves it with."""
    return {g: gig.tls_certificate or layout.tls_certificate(g)
            for g, gig in production.gigs.items()
            if gig.https and gig.act in production.acts_on(host)}


def describe(fullchain: str, now: datetime.datetime) -> dict:
    """A certificate in ``status``: its issuer, expiry, days left, and whether to warn."""
    certificate = x509.load_pem_x509_certificate(fullchain.encode())
    issuer = certificate.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    left = (certificate.not_valid_after_utc - now).days
    return {"issuer": issuer[0].value if issuer else certificate.issuer.rfc4514_string(),
            "not_after": certificate.not_valid_after_utc.isoformat(), "days_left": left,
            "warn": left < WARN_DAYS}
