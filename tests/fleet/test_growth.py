"""What Backstage keeps on a host is bounded (issue 12, finding 14).

On a real fleet host: a deploy's cleanup rotates the act's log past its ``log_max_size`` into
one backup (as root, in root's own ``log/`` folder, which no act can write), trims
``state/history.jsonl`` to its newest entries, keeps in ``good-releases``/``bad-releases`` only
releases still on the host, and removes venues nothing uses (keeping the live one and the one
before it), half-built venues and trees, and leftovers of releases already gone. Rollback still
works afterwards.
"""

import json
import time

import pytest

from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "growth"
ROOT = f"/srv/backstage/{PRODUCTION}"
ACT = f"{ROOT}/acts/storefront"
LOG = f"{ROOT}/log/storefront.log"
HOME = "greetings/templates/greetings/home.html"
GONE = "20200101T000000000Z-0badc0de"  # a release id no host has


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("growth"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def on_host(stage, command, check=True) -> str:
    return stage.fleet.run("h1", command, check=check).stdout


def deploy_new_code(stage) -> str:
    """Deploy a changed page; return the new live release once the old vassal is retired."""
    page = stage.source / HOME
    page.write_text(page.read_text().replace("<h1>", f"<h1>{time.time_ns()} ", 1))
    stage.cli("deploy-act", "storefront")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = on_host(stage, ["ls", f"{ROOT}/vassals"]).split()
        if sum(n.endswith(".ini") for n in names) == 1:
            break
        time.sleep(0.1)
    return on_host(stage, ["readlink", f"{ACT}/current"]).strip().rsplit("/", 1)[1]


def log_size(stage, path=LOG) -> int:
    return int(on_host(stage, ["stat", "-c", "%s", path]))


def test_act_log_is_rotated_past_log_max_size_by_the_next_deploy(stage):
    """Past ``log_max_size`` a deploy copies the act's log to ``.1`` and empties it in place; the
    vassals go on appending to the same file, from its new start (no hole, no lost file)."""
    text = stage.inventory.read_text()
    health = 'health = { path = "/healthz" }\n'
    stage.inventory.write_text(text.replace(health, health + 'log_max_size = "8k"\n'))
    try:
        deploy_new_code(stage)
        for _ in range(100):  # about 190 bytes of request log each
            assert stage.page("/healthz")[0] == 200
        before = log_size(stage)
        assert before > 8 * 1024
        deploy_new_code(stage)
    finally:
        stage.inventory.write_text(text)

    assert log_size(stage, LOG + ".1") >= before
    after = log_size(stage)
    assert after < 8 * 1024
    for _ in range(20):
        assert stage.page("/healthz")[0] == 200
    grown = log_size(stage)
    assert after < grown < after + 20 * 1024
    head = stage.fleet.run("h1", ["head", "-c", "64", LOG]).stdout
    assert "\0" not in head  # appended at the new end, not at the old offset
    # Root rotates in its own folder: no act can plant a link there.
    assert on_host(stage, ["stat", "-c", "%U %a", f"{ROOT}/log"]).split() == ["root", "700"]


def test_history_is_trimmed_to_its_newest_entries_by_the_next_deploy(stage):
    old = "".join(json.dumps({"time": "2020-01-01T00:00:00.000Z", "event": "filler", "n": n})
                  + "\n" for n in range(1500))
    stage.fleet.run("h1", ["bash", "-c", f"cat >> {ROOT}/state/history.jsonl"], input=old)

    release = deploy_new_code(stage)

    lines = on_host(stage, ["cat", f"{ROOT}/state/history.jsonl"]).splitlines()
    assert len(lines) == 1000
    entries = [json.loads(line) for line in lines]
    assert entries[-1]["event"] == "deploy" and entries[-1]["release"] == release
    fillers = [e["n"] for e in entries if e["event"] == "filler"]
    assert fillers == list(range(1500 - len(fillers), 1500))  # the oldest went, in order
    assert stage.cli("history", "--limit", "3").returncode == 0


def test_release_lists_keep_only_releases_on_the_host(stage):
    fake = "".join(f"2019010{d}T000000000Z-{n:08x}\n" for d in range(1, 10) for n in range(40))
    for name in ("good-releases", "bad-releases"):
        stage.fleet.run("h1", ["bash", "-c", f"cat >> {ACT}/{name}"], input=fake)

    release = deploy_new_code(stage)

    on_disk = set(on_host(stage, ["ls", f"{ACT}/releases"]).split())
    good = on_host(stage, ["cat", f"{ACT}/good-releases"]).split()
    assert good and set(good) <= on_disk and release == good[-1]
    assert len(good) == len(set(good))
    assert set(on_host(stage, ["cat", f"{ACT}/bad-releases"]).split()) <= on_disk


def test_cleanup_removes_unused_and_half_built_venues_and_leftovers_but_keeps_rollback(stage):
    venues = f"{ROOT}/venues"
    live_venue = on_host(stage, ["readlink", f"{venues}/storefront"]).strip()
    digest = live_venue.rsplit("-", 1)[1]
    older, newer, half = (f"storefront-{c * len(digest)}" for c in "abc")
    on_host(stage, ["bash", "-c", " && ".join([
        # Two complete venues nothing uses, the older one first...
        f"mkdir -p {venues}/{older}/bin {venues}/{newer}/bin {venues}/{half}/bin",
        f"touch -d '2 days ago' {venues}/{older}/.backstage-complete",
        f"touch -d '1 day ago' {venues}/{newer}/.backstage-complete",
        # ...and what killed commands leave: a venue, a tree and a release half made, and the
        # env and vassal files of a release that is gone.
        f"mkdir -p {ROOT}/trees/.incoming-{'d' * 64}-storefront {ACT}/releases/.incoming-{GONE}",
        f"touch {ACT}/env/env-{GONE} {ACT}/env/env-{GONE}.backstage-new",
        f"touch {ROOT}/vassals/storefront@{GONE}.ini.retired",
    ])])
    before = deploy_new_code(stage)

    release = deploy_new_code(stage)

    left = set(on_host(stage, ["ls", "-A", venues]).split())
    assert left == {"storefront", live_venue, newer}, left  # the live one and the previous one
    for path in (f"{ROOT}/trees/.incoming-{'d' * 64}-storefront",
                 f"{ACT}/releases/.incoming-{GONE}",
                 f"{ACT}/env/env-{GONE}", f"{ACT}/env/env-{GONE}.backstage-new",
                 f"{ROOT}/vassals/storefront@{GONE}.ini.retired"):
        assert stage.fleet.run("h1", ["test", "-e", path], check=False).returncode == 1, path

    stage.cli("rollback", "storefront")
    status, page = stage.page("/")
    assert status == 200 and f"release: {before}" in page
    assert release != before
