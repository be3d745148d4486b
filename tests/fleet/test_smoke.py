"""Smoke requests on a real two-host fleet under load: a release whose page fails while its
health check passes never takes traffic (before the switch) or is reverted at once (after it,
through nginx), is marked bad, and history says why."""

import json

import pytest

from tests.support.deploying import Load, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "smk"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOSTS = ("h1", "h2")
VIEWS = "greetings/views.py"
URLS = "storefront/urls.py"
HEALTH_LINE = 'health = { path = "/healthz" }\n'


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("smoke"), PRODUCTION,
                       {name: 'roles = ["web"]' for name in HOSTS})
    try:
        set_smoke(stage, '[{ path = "/", contains = "<h1>" }]')
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def set_smoke(stage, smoke: str) -> None:
    """Give the act these smoke requests (replacing any) in the inventory."""
    kept = [line for line in stage.inventory.read_text().splitlines(keepends=True)
            if not line.startswith("smoke = ")]
    text = "".join(kept).replace(HEALTH_LINE, f"{HEALTH_LINE}smoke = {smoke}\n")
    stage.inventory.write_text(text)


def edit(stage, relative: str, old: str, new: str) -> None:
    path = stage.source / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))


def live(stage, host: str) -> str:
    return stage.fleet.run(host, f"readlink {ROOT}/acts/storefront/current").stdout.strip()


def lines(stage, host: str, name: str) -> list[str]:
    return stage.fleet.run(host, f"cat {ROOT}/acts/storefront/{name} 2>/dev/null || true"
                           ).stdout.split()


def smoke_entries(stage, host: str) -> list[dict]:
    text = stage.fleet.run(host, f"cat {ROOT}/state/history.jsonl").stdout
    return [e for e in map(json.loads, text.splitlines()) if e["event"] == "smoke"]


def under_load(stage, *args: str):
    loads = [Load(stage, host) for host in HOSTS]
    done = stage.cli("deploy-act", "storefront", *args, check=False)
    results = [load.finish() for load in loads]
    for result in results:
        assert result["requests"] > 0
        assert result["socket_errors"] == 0 and result["non_2xx"] == 0, (result["detail"], done.stderr)
    return done, sum(r["requests"] for r in results)


def test_a_page_that_raises_while_health_passes_never_takes_traffic(stage):
    before = {host: live(stage, host) for host in HOSTS}
    edit(stage, VIEWS, '    """The landing page; reads both logical databases."""\n',
         '    """The landing page; reads both logical databases."""\n'
         '    raise RuntimeError("the home page is broken")\n')
    try:
        done, requests = under_load(stage)
    finally:
        edit(stage, VIEWS, '    raise RuntimeError("the home page is broken")\n', "")
    print(f"broken page with health OK, smoke on /: exit {done.returncode}, "
          f"{requests} requests under load, 0 failed")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step 'smoke' failed" in done.stderr
    assert "GET / answered 500 (expected 200)" in done.stderr
    for host in HOSTS:
        assert live(stage, host) == before[host]  # the old release serves
        status, body = stage.page("/", host)
        assert status == 200 and "<h1>" in body
        bad = lines(stage, host, "bad-releases")
        assert bad and bad[-1] not in lines(stage, host, "good-releases")
        entry = smoke_entries(stage, host)[-1]
        assert (entry["release"], entry["ok"], entry["via"]) == (bad[-1], False, "socket")
        assert entry["results"] == [{"path": "/", "ok": False, "status": 500}]


def test_a_page_broken_only_through_nginx_is_reverted_at_once_and_marked_bad(stage):
    """/media/probe answers 200 from the release's own socket, 404 through nginx (which
    serves /media/ from disk): the first host switches, fails its smoke through nginx and is
    put back at once; the second never switches."""
    before = {host: live(stage, host) for host in HOSTS}
    edit(stage, URLS, 'urlpatterns = [\n', 'from django.http import HttpResponse\n\n'
         'urlpatterns = [\n    path("media/probe", lambda request: HttpResponse("probe")),\n')
    set_smoke(stage, '[{ path = "/", contains = "<h1>" }, { path = "/media/probe" }]')
    try:
        done, requests = under_load(stage, "--serial", "1")
    finally:
        set_smoke(stage, '[{ path = "/", contains = "<h1>" }]')
    print(f"page broken through nginx only: exit {done.returncode}, {requests} requests "
          "under load, 0 failed")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step 'smoke via nginx' failed" in done.stderr
    assert "GET /media/probe answered 404 (expected 200)" in done.stderr
    for host in HOSTS:
        assert live(stage, host) == before[host]
    h1 = smoke_entries(stage, "h1")
    new = h1[-1]["release"]
    assert [(e["via"], e["ok"]) for e in h1 if e["release"] == new] == [
        ("socket", True), ("gig shop", False)]
    assert new in lines(stage, "h1", "bad-releases")
    assert new not in lines(stage, "h1", "good-releases")
    # h2 never switched: only its own socket saw the release.
    assert [e["via"] for e in smoke_entries(stage, "h2") if e["release"] == new] == ["socket"]
    # A rollback never goes to it, and the next good deploy passes everywhere.
    edit(stage, URLS, '    path("media/probe", lambda request: HttpResponse("probe")),\n', "")
    stage.cli("deploy-act", "storefront")
    for host in HOSTS:
        assert live(stage, host) != before[host]
        assert smoke_entries(stage, host)[-1]["ok"] is True


def test_within_max_fail_a_host_failing_its_smoke_through_nginx_is_still_put_back(stage):
    """--max-fail 1 lets the rollout go on past one failed host, but that host does not keep
    serving the release that failed its checks there: it is reverted at once. The smoke path
    answers 200 from the release on both hosts; through nginx (which serves /media/ from
    disk) only on h2, which has the file."""
    before = {host: live(stage, host) for host in HOSTS}
    probe = f"{ROOT}/acts/storefront/media/probe3"
    stage.fleet.run("h2", f"echo probe > {probe} && chmod 644 {probe}")
    edit(stage, URLS, 'urlpatterns = [\n', 'from django.http import HttpResponse\n\n'
         'urlpatterns = [\n    path("media/probe3", lambda request: HttpResponse("probe")),\n')
    set_smoke(stage, '[{ path = "/media/probe3" }]')
    try:
        done, _ = under_load(stage, "--serial", "1", "--max-fail", "1")
    finally:
        set_smoke(stage, '[{ path = "/", contains = "<h1>" }]')
    assert done.returncode == 1, done.stdout + done.stderr
    assert live(stage, "h1") == before["h1"]  # put back, though within --max-fail
    assert live(stage, "h2") != before["h2"]
    new = smoke_entries(stage, "h2")[-1]["release"]
    assert [(e["via"], e["ok"]) for e in smoke_entries(stage, "h1") if e["release"] == new] \
        == [("socket", True), ("gig shop", False)]
    assert [(e["via"], e["ok"]) for e in smoke_entries(stage, "h2") if e["release"] == new] \
        == [("socket", True), ("gig shop", True)]
