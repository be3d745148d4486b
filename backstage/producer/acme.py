"""Certificates from an ACME directory through certbot's ``acme`` library: DNS-01 or HTTP-01.

The account key is made once and kept on the workstation, under the cache directory (0600):
``<cache>/acme/<digest of the directory URL>/account.pem``. Each certificate gets a key of
its own. The challenges' answers (DNS-01: TXT records; HTTP-01: files nginx serves) are
published and withdrawn by the caller, so this module knows nothing of DNS servers or hosts.
"""

import datetime
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backstage.errors import ProducerError
from backstage.model.inventory import Acme

USER_AGENT = "backstage"
# What the directory or the way to it can raise: each becomes one line naming the directory.
FAILURES = (errors.Error, requests.RequestException, josepy.errors.Error, ValueError)
# DNS-01: record names -> TXT values; HTTP-01: tokens -> the answer (one). Published before the
# challenges are answered and withdrawn afterwards.
Publish = Callable[[dict[str, list[str]]], None]
KINDS = {"dns-01": challenges.DNS01, "http-01": challenges.HTTP01}
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # base64url (RFC 8555 8.3): a file name on hosts


def new_key_pem() -> bytes:
    """A certificate's key: ECDSA P-256 (what nginx and every client handle)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def account_folder(cache: Path, settings: Acme) -> Path:
    """Where the account of this directory lives (and the certificates obtained there)."""
    return cache / "acme" / hashlib.sha256(settings.directory.encode()).hexdigest()[:16]


def account_key(folder: Path) -> josepy.JWKRSA:
    """The ACME account's key, made (0600, in a 0700 folder) the first time."""
    path = folder / "account.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return josepy.JWKRSA(key=key)


class AcmeDirectory:
    """One ACME directory and this workstation's account there."""

    def __init__(self, settings: Acme, cache: Path):
        self.settings = settings
        self.key = account_key(account_folder(cache, settings))

    def fail(self, what: str, error: Exception) -> ProducerError:
        # One line: an authorization's error says why on the lines after its first.
        detail = " ".join(str(error).split())[:500] or type(error).__name__
        return ProducerError(f"acme {self.settings.directory}: {what}: {detail}")

    def _client(self) -> client.ClientV2:
        verify = str(self.settings.ca_bundle) if self.settings.ca_bundle else True
        network = client.ClientNetwork(self.key, user_agent=USER_AGENT, verify_ssl=verify,
                                       timeout=30)
        try:
            directory = client.ClientV2.get_directory(self.settings.directory, network)
            acme = client.ClientV2(directory, network)
            registration = messages.NewRegistration.from_data(
                email=self.settings.email, terms_of_service_agreed=True)
            try:
                network.account = acme.new_account(registration)
            except errors.ConflictError as existing:  # this key has an account already
                account = messages.RegistrationResource(uri=existing.location,
                                                        body=messages.Registration())
                network.account = acme.query_registration(account)
        except FAILURES as error:
            raise self.fail("cannot register the account", error) from None
        return acme

    def issue(self, gig: str, domains: list[str], publish: Publish, withdraw: Publish,
              timeout: float = 90) -> tuple[str, str]:
        """A certificate for ``domains``: (full chain, key), both PEM text. One order; its
        challenges' answers are published before the challenges are answered and withdrawn
        afterwards, whatever happened."""
        acme = self._client()
        key_pem = new_key_pem()
        try:
            order = acme.new_order(crypto_util.make_csr(key_pem, domains))
        except FAILURES as error:
            raise self.fail(f"gig {gig}: the order was refused", error) from None
        kind = self.settings.challenge
        answers, records = [], {}
        for authorization in order.authorizations:
            domain = authorization.body.identifier.value
            challenge = next((c for c in authorization.body.challenges
                              if isinstance(c.chall, KINDS[kind])), None)
            if challenge is None:
                raise ProducerError(f"acme {self.settings.directory}: gig {gig}: no "
                                    f"{kind.upper()} challenge for {domain}")
            name, value = self.answer(challenge.chall, domain)
            records.setdefault(name, []).append(value)
            answers.append(challenge)
        publish(records)
        try:
            for challenge in answers:
                acme.answer_challenge(challenge, challenge.chall.response(self.key))
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
            done = acme.poll_and_finalize(order, deadline)
        except FAILURES as error:
            raise self.fail(f"gig {gig}: the {kind.upper()} challenge failed", error) from None
        finally:
            withdraw(records)
        return done.fullchain_pem, key_pem.decode()

    def answer(self, challenge, domain: str) -> tuple[str, str]:
        """What to publish for a challenge: DNS-01 (TXT record name, value), HTTP-01 (token,
        key authorization)."""
        if isinstance(challenge, challenges.DNS01):
            return challenge.validation_domain_name(domain), challenge.validation(self.key)
        token = challenge.encode("token")
        if not TOKEN.fullmatch(token):
            raise ProducerError(f"acme {self.settings.directory}: an HTTP-01 token that is no "
                                "base64url text")
        return token, challenge.validation(self.key)


class CertificateStore:
    """The certificates obtained for a production's gigs, kept on the workstation (0600) so
    a deploy or a booking installs the one already obtained instead of asking again:
    ``<cache>/acme/<digest of the directory URL>/<production>/<gig>/{fullchain,privkey}.pem``."""

    def __init__(self, cache: Path, settings: Acme, production: str):
        self.folder = account_folder(cache, settings) / production

    def get(self, gig: str) -> tuple[str, str] | None:
        try:
            return tuple((self.folder / gig / name).read_text()
                          for name in ("fullchain.pem", "privkey.pem"))
        except FileNotFoundError:
            return None

    def put(self, gig: str, fullchain: str, key: str) -> None:
        folder = self.folder / gig
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, text in (("fullchain.pem", fullchain), ("privkey.pem", key)):
            temporary = folder / f".{name}.new"
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(text)
            temporary.replace(folder / name)
