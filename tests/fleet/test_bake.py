"""The bake window on a real two-host fleet under load: a release whose page fails while its
health check passes (no smoke requests to catch it) takes traffic, the bake sees the 500s
visitors get and puts every switched host back within the window; a release failing one
request in twenty is reverted by a 1% bake and kept by a 10% one."""

import json
import time
from datetime import datetime

import jsonschema
import pytest

from tests.support.deploying import REPO, Load, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "bak"
ROOT = f"/srv/backstage/{PRODUCTION}"
HOSTS = ("h1", "h2")
VIEWS = "greetings/views.py"
HEALTH_LINE = 'health = { path = "/healthz" }\n'
BAKE = 4
DOCSTRING = '    """The landing page; reads both logical databases."""\n'
BROKEN = '    raise RuntimeError("the home page is broken")\n'
ONE_IN_TWENTY = '    if next(SERVED) % 20 == 19:\n        raise RuntimeError("one in twenty")\n'
COUNTER = 'SERVED = __import__("itertools").count()\n'
SCHEMA = json.loads((REPO / "backstage" / "rollout.schema.json").read_text())


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("bake"), PRODUCTION,
                       {name: 'roles = ["web"]' for name in HOSTS})
    try:
        set_bake(stage, "1%")
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def set_bake(stage, max_error_rate: str) -> None:
    """Give the act a bake of BAKE seconds with this error rate (replacing any)."""
    kept = [line for line in stage.inventory.read_text().splitlines(keepends=True)
            if not line.startswith(("bake = ", "max_error_rate = "))]
    text = "".join(kept).replace(
        HEALTH_LINE, f'{HEALTH_LINE}bake = {BAKE}\nmax_error_rate = "{max_error_rate}"\n')
    stage.inventory.write_text(text)


def edit(stage, old: str, new: str) -> None:
    path = stage.source / VIEWS
    text = path.read_text()
    assert old in text, f"{old!r} not in {VIEWS}"
    path.write_text(text.replace(old, new, 1))


def live(stage, host: str) -> str:
    return stage.fleet.run(host, f"readlink {ROOT}/acts/storefront/current").stdout.strip()


def lines(stage, host: str, name: str) -> list[str]:
    return stage.fleet.run(host, f"cat {ROOT}/acts/storefront/{name} 2>/dev/null || true"
                           ).stdout.split()


def bakes(stage, host: str) -> list[dict]:
    text = stage.fleet.run(host, f"cat {ROOT}/state/history.jsonl").stdout
    return [e for e in map(json.loads, text.splitlines()) if e["event"] == "bake"]


def deploy_under_load(stage, *args: str) -> tuple[dict, list[dict]]:
    """deploy-act --json with load on each host's gig: the report and each host's load."""
    loads = [Load(stage, host) for host in HOSTS]
    done = stage.cli("deploy-act", "storefront", "--json", *args, check=False)
    results = [load.finish() for load in loads]
    for result in results:
        assert result["requests"] > 0 and result["socket_errors"] == 0, result["detail"]
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    return report, results


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_a_page_that_raises_while_health_passes_is_reverted_by_the_bake(stage):
    before = {host: live(stage, host) for host in HOSTS}
    edit(stage, DOCSTRING, DOCSTRING + BROKEN)
    try:
        report, loads = deploy_under_load(stage)
    finally:
        edit(stage, BROKEN, "")
    failed = sum(r["non_2xx"] for r in loads)
    requests = sum(r["requests"] for r in loads)
    assert report["exit_code"] == 1 and "the bake failed on" in report["stopped"], report
    back_within = {}
    for host in HOSTS:
        outcome = report["hosts"][host]
        assert outcome["result"] == "reverted" and live(stage, host) == before[host]
        assert outcome["bake"]["ok"] is False and outcome["bake"]["errors"] >= 5
        # From the switch's start to the revert's end: within the bake window and a few s.
        back = seconds_between(outcome["started"]["switch"], outcome["started"]["revert"]) \
            + outcome["durations"]["revert"]
        assert back < BAKE + 5, outcome
        back_within[host] = back
        status, body = stage.page("/", host)
        assert status == 200 and "<h1>" in body
        new = bakes(stage, host)[-1]["release"]
        assert new in lines(stage, host, "bad-releases")
        assert new not in lines(stage, host, "good-releases")
    assert report["bakes"][0]["ok"] is False
    assert failed > 0  # the release took traffic: visitors saw its 500s until the revert
    print(f"\nbroken page with health OK, no smoke, bake {BAKE}s: exit 1, all hosts reverted; "
          f"visitors saw {failed} failed of {requests} requests, 0 socket errors; bake counted "
          + ", ".join(f"{h} {report['hosts'][h]['bake']['errors']} of "
                      f"{report['hosts'][h]['bake']['requests']} in "
                      f"{report['hosts'][h]['bake']['seconds']}s, back on the old release "
                      f"{back_within[h]:.1f}s after its switch began" for h in HOSTS))


@pytest.mark.parametrize(("rate", "kept"), [("1%", False), ("10%", True)])
def test_a_release_failing_five_percent_is_judged_by_max_error_rate(stage, rate, kept):
    before = {host: live(stage, host) for host in HOSTS}
    # The bake compares with the last BAKE seconds of the gig's log, whichever release served
    # them: let the previous case's failures (a reverted release) age out of that window.
    time.sleep(BAKE + 1)
    set_bake(stage, rate)
    edit(stage, "logger = logging.getLogger(__name__)\n",
         "logger = logging.getLogger(__name__)\n" + COUNTER)
    edit(stage, DOCSTRING, DOCSTRING + ONE_IN_TWENTY)
    try:
        report, loads = deploy_under_load(stage, "--serial", "1")
    finally:
        edit(stage, ONE_IN_TWENTY, "")
        edit(stage, COUNTER, "")
        set_bake(stage, "1%")
    counts = {h: report["hosts"][h]["bake"] for h in HOSTS if report["hosts"][h]["bake"]}
    print(f"\n5% failing release, max_error_rate {rate}: exit {report['exit_code']}, "
          + "; ".join(f"{h} bake {c['errors']} of {c['requests']} failed "
                      f"({c['errors'] / max(c['requests'], 1):.1%}), before "
                      f"{c['before']['errors']} of {c['before']['requests']}"
                      for h, c in counts.items())
          + f"; visitors saw {sum(r['non_2xx'] for r in loads)} failed of "
            f"{sum(r['requests'] for r in loads)}")
    if kept:
        assert report["exit_code"] == 0, report
        for host in HOSTS:
            assert live(stage, host) != before[host]
            assert counts[host]["ok"] and counts[host]["errors"] > 0
            assert bakes(stage, host)[-1]["ok"] is True
            assert live(stage, host).rsplit("/", 1)[1] in lines(stage, host, "good-releases")
        assert [b["ok"] for b in report["bakes"]] == [True, True]
    else:
        assert report["exit_code"] == 1 and report["stopped"] == "the bake failed on h1", report
        assert list(counts) == ["h1"] and counts["h1"]["ok"] is False
        assert report["hosts"]["h2"]["result"] == "not switched"
        for host in HOSTS:
            assert live(stage, host) == before[host]
        assert bakes(stage, "h1")[-1]["ok"] is False
