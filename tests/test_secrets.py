"""Secrets: passed on stdin into a 0600 env file, never in argv, never in a log or in output.

Redaction and the secrets of a loaded inventory, on this machine; tests/fleet/test_secrets.py
deploys with random secret values to a fleet host.
"""

import io
import json
import logging
import secrets
import tarfile

import pytest

from backstage.artefacts import bundle
from backstage.engine.report import Reporter
from backstage.errors import StepFailed
from backstage.model.secrets import Redactor, Secret, reveal

# --- redaction, alone -----------------------------------------------------------------------------

def test_redact_replaces_every_form_of_a_value():
    token = "s3cr3t-" + secrets.token_hex(8)
    quoted = 'pa"ss\\word'
    redact = Redactor([Secret(token), quoted, "ab"])  # too short to redact: it would blank out words
    text = (f"error: {token} and {token}x; json: {{\"k\": \"pa\\\"ss\\\\word\"}}; "
            f"repr: 'pa\"ss\\\\word'; ab stays")
    out = redact(text)
    assert token not in out and "pa\\\"ss" not in out and quoted not in out
    assert out.count("[REDACTED]") == 4
    assert out.endswith("ab stays")


def test_reporter_redacts_failed_step_details():
    from rich.console import Console

    token = secrets.token_hex(20)
    console = Console(file=io.StringIO(), width=200, highlight=False)
    reporter = Reporter(console=console, verbose=True, redact=Redactor([Secret(token)]))
    reporter.failed("h1", StepFailed("h1", "check", f"Traceback...\nValueError: key={token}"))
    reporter.info(f"note {token}")
    out = console.file.getvalue()
    assert token not in out
    assert out.count("[REDACTED]") == 3  # the error line, its detail line, the note


def secrets_project(tmp_path, name: str, values: dict[str, str]):
    """An inventory of production ``name`` whose act's secrets file holds ``values``."""
    from tests.test_inventory import base_inventory, make_project, write_inventory

    project = make_project(tmp_path / name)
    (project / "shop.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    data = base_inventory()
    data["production"] = name
    data["acts"]["storefront"]["secrets"] = "../shop.env"
    return write_inventory(project, data)


def test_a_loaded_inventory_redacts_its_secrets(tmp_path):
    from backstage.model import load_production

    token = secrets.token_urlsafe(30)
    production = load_production(secrets_project(tmp_path, "shop", {"API_TOKEN": token}))
    assert production.redactor()(f"x {token} y") == "x [REDACTED] y"


def test_a_secret_is_never_shown_by_str_repr_format_or_logging(caplog):
    value = secrets.token_hex(20)
    secret = Secret(value)
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", repr({"KEY": secret}),
             repr([secret]), "%s %r" % (secret, secret), "{}".format(secret)]  # noqa: UP031, UP032
    with caplog.at_level(logging.INFO):
        logging.getLogger("backstage.test").info("secret %s %r", secret, {"KEY": secret})
    for text in [*shown, caplog.text]:
        assert value not in text and "[REDACTED]" in text, text
    with pytest.raises(TypeError):
        json.dumps({"KEY": secret})  # refused, not written out
    assert reveal(secret) == value  # only the env file's writer takes it out


def test_a_loaded_production_never_shows_its_secrets(tmp_path, caplog):
    from backstage import Production
    from backstage.model.inventory import load_production

    token = secrets.token_urlsafe(30)
    path = secrets_project(tmp_path, "shop", {"API_TOKEN": token})
    production = Production.load(path)
    inventory = load_production(path)
    with caplog.at_level(logging.INFO):
        logging.getLogger("backstage.test").info("%s %r %r", production, production, inventory)
    secrets_of = inventory.secrets_of("storefront")
    for text in [repr(production), str(production), f"{production!r}", repr(inventory),
                 repr(production.redact), repr(secrets_of), str(vars(production)), caplog.text]:
        assert token not in text, text
    assert reveal(secrets_of["API_TOKEN"]) == token


def test_two_productions_redact_only_their_own_secrets(tmp_path):
    from backstage import Production

    shared, own_a, own_b = (secrets.token_hex(16) for _ in range(3))
    a = Production.load(secrets_project(tmp_path, "alpha", {"SHARED": shared, "MINE": own_a}))
    b = Production.load(secrets_project(tmp_path, "beta", {"SHARED": shared, "MINE": own_b}))
    text = f"{shared} {own_a} {own_b}"
    assert a.redact(text) == f"[REDACTED] [REDACTED] {own_b}"
    assert b.redact(text) == f"[REDACTED] {own_a} [REDACTED]"
    assert a.reporter.redact is a.redact and b.reporter.redact is b.redact


def test_a_secrets_file_inside_the_source_is_not_uploaded(tmp_path):
    source = tmp_path / "project"
    (source / "secrets").mkdir(parents=True)
    (source / "manage.py").write_text("")
    (source / "secrets" / "storefront.env").write_text("API_TOKEN=" + secrets.token_hex(20))
    with tarfile.open(fileobj=io.BytesIO(bundle.pack(source).full())) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.endswith("storefront.env")], names

