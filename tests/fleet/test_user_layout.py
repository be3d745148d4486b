"""The user layout: an unprivileged SSH user, everything under its home, its own nginx."""

import time

import pytest

from tests.support.deploying import make_stage, processes

pytestmark = pytest.mark.fleet


@pytest.fixture
def stage(tmp_path):
    host = 'user = "deploy"\nlayout = "user"\nroot = "/home/deploy/stage"\nhttp_port = 8080'
    stage = make_stage(tmp_path, "solo", {"h1": host}, users=("deploy",))
    yield stage
    stage.fleet.stop()


def test_user_layout_deploys_without_privileges(stage):
    stage.cli("setup-stage")
    stage.cli("deploy-act", "storefront")
    status, body = stage.page("/", port=8080)
    assert status == 200 and "Welcome to the storefront" in body
    assert stage.page("/static/greetings/style.css", port=8080)[0] == 200

    owners = stage.fleet.run("h1", ["ps", "-o", "user=,args=", "-u", "deploy"]).stdout
    assert "uwsgi" in owners and "nginx: master" in owners
    assert not [p for p in processes(stage, "h1", "nginx") if "root" in p.split()[0]]
    tree = stage.fleet.run("h1", "find /home/deploy/stage ! -user deploy | head").stdout
    assert tree == "", f"files not owned by the deploy user: {tree}"
    assert stage.fleet.run("h1", "ls /srv").stdout == ""


def test_book_and_cancel_gig(stage):
    stage.cli("setup-stage")
    stage.cli("deploy-act", "storefront")
    stage.cli("cancel-gig", "shop")
    # nginx reloads asynchronously; once its old workers leave, the default server answers
    # the gig's domain on port 8080, as any domain no gig books: 404.
    deadline = time.monotonic() + 10
    while stage.page("/", port=8080)[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stage.page("/", port=8080)[0] == 404
    assert stage.fleet.run("h1", "ls /home/deploy/stage/solo/nginx/sites").stdout == \
        "00-backstage-solo-default.conf\n"
    stage.cli("book-gig", "shop")  # returns once the gig answers through nginx
    assert stage.page("/", port=8080)[0] == 200
