"""Fleet rollouts over four real hosts sharing a real PostgreSQL server: batches, run-once
migrations, failure policy with cross-host revert, unreachable hosts, host keys, --json."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests.support.deploying import REPO, make_stage
from tests.support.postgres import GREETINGS_ON_POSTGRES, start_postgres

pytestmark = pytest.mark.fleet
HOSTS = ["h1", "h2", "h3", "h4"]
SCHEMA = json.loads((REPO / "backstage" / "rollout.schema.json").read_text())
HOME = "greetings/templates/greetings/home.html"


@pytest.fixture(scope="module")
def fleet4(tmp_path_factory):
    postgres = start_postgres(["greetings"])
    try:
        stage = make_stage(tmp_path_factory.mktemp("rollout"), "fleet",
                           {h: 'roles = ["web"]' for h in HOSTS}, databases=GREETINGS_ON_POSTGRES,
                           secrets={"GREETINGS_PASSWORD": postgres.password},
                           requirements=("psycopg[binary]>=3.1",), shared=postgres.shared)
        try:
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            yield stage, postgres
        finally:
            stage.fleet.stop()
    finally:
        postgres.stop()


def rollout(stage, *args: str, code: int = 0) -> dict:
    done = stage.cli("deploy-act", "storefront", "--json", *args, check=False)
    assert done.returncode == code, done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


def new_heading(stage, text: str) -> None:
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{text}</h1>", path.read_text()))


def heading(stage, host: str) -> str:
    status, body = stage.page("/", host=host)
    assert status == 200, (host, body)
    return re.search(r"<h1>(.*?)</h1>", body).group(1)


def history(stage) -> list[dict]:
    out = stage.cli("history", "--limit", "500", "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


def test_serial_two_switches_in_two_batches_after_overlapping_prepares(fleet4):
    stage, _ = fleet4
    new_heading(stage, "Batch release")
    report = rollout(stage, "--serial", "2")
    assert report["batches"] == [["h1", "h2"], ["h3", "h4"]]
    assert {h["result"] for h in report["hosts"].values()} == {"deployed"}
    assert all(heading(stage, h) == "Batch release" for h in HOSTS)

    switched = {e["host"]: e["time"] for e in history(stage)
                if e["event"] == "deploy" and e.get("release") == report["release"]}
    assert max(switched["h1"], switched["h2"]) < min(switched["h3"], switched["h4"])

    hosts = report["hosts"].values()
    starts = [h["started"]["prepare"] for h in hosts]
    ends = [_plus(h["started"]["prepare"], h["durations"]["prepare"]) for h in hosts]
    assert max(starts) < min(ends), "the four prepare phases did not overlap"


def _plus(stamp: str, seconds: float) -> str:
    from datetime import datetime, timedelta

    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_shared_database_is_migrated_exactly_once_per_deploy(fleet4):
    stage, postgres = fleet4
    new_heading(stage, "Migrated once")
    report = rollout(stage)
    migrations = [e for e in history(stage)
                  if e["event"] == "migrate" and e.get("release") == report["release"]]
    shared = [e for e in migrations if "greetings" in e["databases"]]
    assert len(shared) == 1
    assert shared[0]["host"] == report["migrations"]["host"] == "h1"
    assert shared[0]["databases"] == ["greetings"]
    # users is a sqlite file on each host: migrated once on each, during its prepare.
    assert sorted(e["host"] for e in migrations if e["databases"] == ["users"]) == \
        ["h1", "h2", "h3", "h4"]
    applied = postgres.psql("greetings", "SELECT count(*) FROM django_migrations "
                                         "WHERE app = 'greetings'")
    assert int(applied) >= 1
    # Rows written through one host are read through another: one shared database.
    stage.post("/api/greet", "name=Grace", host="h2")
    assert "Hello, Grace!" in stage.page("/", host="h3")[1]


def test_health_failure_in_the_second_batch_reverts_the_whole_fleet(fleet4):
    stage, _ = fleet4
    before = {h: heading(stage, h) for h in HOSTS}
    stage.fleet.run("h4", "nginx -s stop")  # h4's switch cannot pass its check through nginx
    try:
        new_heading(stage, "Never live")
        report = rollout(stage, "--serial", "2", "--max-fail", "0", code=1)
    finally:
        stage.fleet.run("h4", "nginx")
    results = {h: o["result"] for h, o in report["hosts"].items()}
    assert results == {h: "reverted" for h in HOSTS}
    assert "failed" in report["stopped"]
    assert "health via nginx" in report["hosts"]["h4"]["error"]
    for host, outcome in report["hosts"].items():
        assert outcome["release_after"] == outcome["release_before"]
        assert heading(stage, host) == before[host]


def test_host_keys_unknown_refused_unless_accepted_and_changed_always_refused(fleet4, tmp_path):
    stage, _ = fleet4
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory = tmp_path / "keys.toml"
    text = stage.inventory.read_text().replace(
        "[ssh]\n", f'[ssh]\nknown_hosts = "{known}"\n')
    inventory.write_text(text.replace('production = "fleet"', ""))

    def status(*extra):
        from tests.support.deploying import backstage

        return backstage("status", "--hosts", "h1", "--inventory", str(inventory), *extra,
                         cwd=stage.work, check=False)

    refused = status()
    assert refused.returncode == 3
    assert "h1: cannot connect: unknown host key" in refused.stderr
    accepted = status("--accept-new-host-keys")
    assert accepted.returncode == 0, accepted.stderr
    assert known.read_text().startswith("h1 ssh-ed25519 ")
    other_key = next(line.split(None, 1)[1] for line in stage.fleet.known_hosts.read_text()
                     .splitlines() if line.startswith("h2 "))
    known.write_text(f"h1 {other_key}\n")
    changed = status("--accept-new-host-keys")
    assert changed.returncode == 3
    assert "h1: host key CHANGED" in changed.stderr


def test_unreachable_host_is_reported_and_the_others_deploy(fleet4):
    stage, _ = fleet4
    stage.fleet.kill("h4")
    new_heading(stage, "Without h4")
    done = stage.cli("deploy-act", "storefront", "--max-fail", "1", check=False)
    assert done.returncode == 3
    assert "h4: cannot connect" in done.stderr
    assert all(heading(stage, h) == "Without h4" for h in ["h1", "h2", "h3"])
    # A restarted host (a reboot: /run lost) serves its release again after setup-stage.
    stage.fleet.restart("h4")
    stage.cli("setup-stage", "--hosts", "h4")
    assert heading(stage, "h4") != "Without h4"
    assert Path(stage.inventory).exists()
