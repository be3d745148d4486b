"""What Backstage keeps on a host is bounded (issue 12, finding 14).

On a real fleet host: the act's log is rotated by uWSGI at the act's ``log_max_size`` (as the
act's user, in the act's own log folder) into one backup; a deploy's cleanup trims
``state/history.jsonl`` to its newest entries, keeps in ``good-releases``/``bad-releases`` only
releases still on the host, and removes venues nothing uses (keeping the live one and the one
before it), half-built venues and trees, and leftovers of releases already gone. Rollback still
works afterwards.
"""

import json
import time

import pytest

from tests.deploying import make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "growth"
ROOT = f"/srv/backstage/{PRODUCTION}"
ACT = f"{ROOT}/acts/storefront"
USER = f"bs-{PRODUCTION}-storefront"
LOG_DIR = f"{ROOT}/log/storefront"
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


def test_act_log_is_rotated_at_log_max_size_into_one_backup(stage):
    text = stage.inventory.read_text()
    health = 'health = { path = "/healthz" }\n'
    stage.inventory.write_text(text.replace(health, health + 'log_max_size = "8k"\n'))
    try:
        deploy_new_code(stage)
    finally:
        stage.inventory.write_text(text)
    # About 8 KB of request log a second for 6 s (~190 bytes a request); the vassal's master
    # checks the size once a second, so a file passes 8 KiB by at most a second's worth.
    for _ in range(6):
        for _ in range(40):
            assert stage.page("/healthz")[0] == 200
        time.sleep(1.1)

    listing = on_host(stage, ["ls", "-ln", LOG_DIR]).splitlines()[1:]
    names = sorted(line.split()[-1] for line in listing)
    assert names == ["storefront.log", "storefront.log.1"], listing
    sizes = {n: int(on_host(stage, ["stat", "-c", "%s", f"{LOG_DIR}/{n}"])) for n in names}
    assert sizes["storefront.log.1"] > 8 * 1024 and all(s < 20 * 1024 for s in sizes.values())
    assert sum(sizes.values()) < 240 * 190  # less than was logged: older lines went
    assert "logsize:" in on_host(stage, ["tail", "-n", "1", f"{LOG_DIR}/storefront.log.1"])
    # uWSGI rotates as the act's user, in the act's own folder; root's log/ stays root's.
    assert on_host(stage, ["stat", "-c", "%U %a", LOG_DIR]).split() == [USER, "750"]
    assert on_host(stage, ["stat", "-c", "%U %a", f"{ROOT}/log"]).split() == ["root", "755"]
    owners = on_host(stage, ["stat", "-c", "%U", f"{LOG_DIR}/storefront.log"]).split()
    assert owners == [USER]
    assert "unable to rotate" not in on_host(stage, ["cat", f"{LOG_DIR}/storefront.log"])


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
        f"mkdir -p {ROOT}/trees/.incoming-{'d' * 64} {ACT}/releases/.incoming-{GONE}",
        f"touch {ACT}/env/env-{GONE} {ACT}/env/env-{GONE}.backstage-new",
        f"touch {ROOT}/vassals/storefront@{GONE}.ini.retired",
    ])])
    before = deploy_new_code(stage)

    release = deploy_new_code(stage)

    left = set(on_host(stage, ["ls", "-A", venues]).split())
    assert left == {"storefront", live_venue, newer}, left  # the live one and the previous one
    for path in (f"{ROOT}/trees/.incoming-{'d' * 64}", f"{ACT}/releases/.incoming-{GONE}",
                 f"{ACT}/env/env-{GONE}", f"{ACT}/env/env-{GONE}.backstage-new",
                 f"{ROOT}/vassals/storefront@{GONE}.ini.retired"):
        assert stage.fleet.run("h1", ["test", "-e", path], check=False).returncode == 1, path

    stage.cli("rollback", "storefront")
    status, page = stage.page("/")
    assert status == 200 and f"release: {before}" in page
    assert release != before


def test_a_link_the_act_plants_in_its_log_folder_never_makes_root_write(stage):
    """The act owns its log folder, so it may plant links there: the vassal opens and rotates
    the log only as the act's user, and a failed health check reads it as that user."""
    victim = "/root/written-through-a-link"
    log = f"{LOG_DIR}/storefront.log"
    plant = f"ln -sfn {victim} {log} && ln -sfn {victim}.1 {log}.1"
    planted = stage.fleet.run("h1", ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups",
                                     "--", "bash", "-c", plant], check=False)
    assert planted.returncode == 0, planted.stderr
    page = stage.source / HOME
    page.write_text(page.read_text().replace("<h1>", "<h1>Planted ", 1))
    done = stage.cli("deploy-act", "storefront", check=False)

    assert stage.fleet.run("h1", ["ls", f"{victim}", f"{victim}.1"], check=False).returncode == 2
    assert done.returncode == 1  # the act broke its own log: its new release cannot start
    assert stage.page("/")[0] == 200  # the live release still serves
    stage.fleet.run("h1", ["rm", log, f"{log}.1"])
    deploy_new_code(stage)
    assert stage.page("/")[0] == 200
