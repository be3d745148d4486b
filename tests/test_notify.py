"""Notifications against a real HTTP server on loopback: the document, Slack's form, retries,
and a dead webhook reported without failing anything (or showing its token)."""

import pytest

from backstage.model.inventory import Notify
from backstage.producer.notify import send
from tests.support.webhooks import Receiver, dead_url
from tests.test_inventory import base_inventory, expect_error, make_project, write_inventory

DEPLOY = {"event": "deploy", "production": "shop", "act": "storefront", "by": "ada@ws",
          "time": "2026-11-29T19:00:00Z", "release": "r2", "previous": "r1",
          "hosts": ["h1", "h2"], "outcome": "deployed", "duration": 12.5}


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_one_json_document_per_event(receiver):
    assert send(Notify(webhooks=[receiver.url()]), DEPLOY) == []
    assert receiver.bodies == [DEPLOY] and receiver.paths == ["/hook/s3cr3t-token"]


def test_slack_gets_a_text(receiver):
    send(Notify(webhooks=[receiver.url()], format="slack"), DEPLOY)
    assert receiver.bodies == [{"text": "shop: deploy of storefront deployed: r2 (was r1) on "
                                        "h1, h2 (ada@ws)"}]


def test_a_failing_webhook_is_tried_again(receiver):
    receiver.statuses = [500, 503]
    assert send(Notify(webhooks=[receiver.url()], retries=2, timeout=2), DEPLOY) == []
    assert len(receiver.bodies) == 3


def test_a_dead_webhook_is_reported_never_raised_and_its_token_never_shown(receiver):
    dead = dead_url()
    lines = send(Notify(webhooks=[dead, receiver.url()], retries=1, timeout=1), DEPLOY)
    assert lines == [f"notify {dead.rsplit('/hook', 1)[0]} failed (ConnectionError, 2 attempts)"]
    assert receiver.bodies == [DEPLOY]  # the next webhook still gets it
    assert "s3cr3t" not in lines[0]


def test_a_bad_webhook_is_named(tmp_path):
    data = {**base_inventory(), "notify": {"webhooks": ["ftp://example.test/x"]}}
    make_project(tmp_path)
    assert "notify.webhooks" in str(expect_error(write_inventory(tmp_path, data)))
