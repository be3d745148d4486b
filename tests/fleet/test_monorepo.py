"""Services in a monorepo, on two real hosts with a real PostgreSQL: three acts of one
repository (examples/monorepo) share a venue and one uploaded tree per revision; two logical
databases (sqlite on each host, PostgreSQL shared) are each migrated once per deploy; rows
survive redeploys and a rollback."""

import json
import os
import re
import shutil
import time
from types import SimpleNamespace

import pytest

from backstage.sandbox.fleet import Fleet, fleet_available
from tests.support.fleet_fixtures import RUN_PREFIX
from tests.support.postgres import HOST_SOCKET_DIR, start_postgres
from tests.support.testbed import REPO, SECRET_KEY, Stage, backstage

pytestmark = pytest.mark.fleet
EXAMPLE = REPO / "examples" / "monorepo"
HOSTS = ["h1", "h2"]
ACTS = ["api", "shop", "board"]  # api migrates greetings, which shop's health check reads
SHOP, API, BOARD_PORT = "shop.example.test", "api.example.test", 9003
TOTALS = re.compile(r"^(h\d)\s+(\d+) remote commands, ([0-9.]+) KiB sent$", re.MULTILINE)


def inventory_text(fleet: Fleet, repo, secrets) -> str:
    acts = "\n".join(f"""
[acts.{name}]
venue = "mono"
source = "{repo}"
source_root = "services/{name}"
pythonpath = ["libs"]
settings = "{name}.settings"
secrets = "{secrets}"
health = {{ path = "/healthz" }}
{extra}""" for name, extra in [
        # shop and board share the sqlite file of users, so they run as one unix user.
        ("shop", 'databases = ["users", "greetings"]\nuser = "mono-people"'),
        ("api", 'databases = ["greetings"]'),
        ("board", f'databases = ["users"]\nhttp_port = {BOARD_PORT}\nuser = "mono-people"'),
    ])
    hosts = "".join(f"[hosts.{h}]\n" for h in HOSTS)
    return f"""
[ssh]
config = "{fleet.ssh_config}"

{hosts}
[venues.mono]
requirements = "{repo}/requirements.txt"
{acts}
[databases.users]
migrate_with = "shop"

[databases.greetings]
engine = "postgresql"
host = "{HOST_SOCKET_DIR}"
user = "storefront"
password_secret = "GREETINGS_PASSWORD"
migrate_with = "api"

[gigs.shop]
act = "shop"
domains = ["{SHOP}"]

[gigs.api]
act = "api"
domains = ["{API}"]
"""


@pytest.fixture(scope="module")
def mono(tmp_path_factory):
    reason = fleet_available()
    if reason:
        pytest.skip(reason)
    postgres = start_postgres(["greetings"])
    work = tmp_path_factory.mktemp("mono")
    fleet = Fleet(work / "fleet", prefix=RUN_PREFIX, shared=postgres.shared)
    try:
        fleet.start(HOSTS)
        repo = work / "repo"
        shutil.copytree(EXAMPLE, repo)
        (repo / "libs" / "assets").mkdir()
        (repo / "libs" / "assets" / "blob.bin").write_bytes(os.urandom(256 * 1024))
        secrets = work / "secrets.env"
        secrets.write_text(f"DJANGO_SECRET_KEY={SECRET_KEY}\n"
                           f"GREETINGS_PASSWORD={postgres.password}\n")
        (work / "inventories").mkdir()
        inventory = work / "inventories" / "mono.toml"
        inventory.write_text(inventory_text(fleet, repo, secrets))
        stage = Stage(fleet, work, repo, inventory)
        stage.cli("setup-stage")
        yield stage
    finally:
        fleet.stop()
        postgres.stop()


def deploy(stage, act: str) -> dict:
    """Deploy with --verbose: the release, the output, and per host [commands, KiB sent]."""
    done = stage.cli("deploy-act", act, "--verbose")
    totals = {h: (int(c), float(k)) for h, c, k in TOTALS.findall(done.stderr)}
    assert sorted(totals) == HOSTS, done.stderr
    release = re.search(r"upload release (\S+) ", done.stderr).group(1)
    return {"release": release, "output": done.stderr, "totals": totals}


def answer(stage, host: str, path: str, domain: str | None = None, port: int = 80) -> dict:
    status, body = stage.fleet.http(host, path, port=port, host_header=domain or "localhost")
    assert status == 200, (host, path, body)
    return json.loads(body)


def history(stage) -> list[dict]:
    out = stage.cli("history", "--limit", "1000", "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


def migrations(stage, release: str) -> list[tuple[str, str]]:
    """(host, logical database) for each migration history records for a release."""
    return sorted((e["host"], d) for e in history(stage)
                  if e["event"] == "migrate" and e["release"] == release for d in e["databases"])


def wait_for_one_release(stage, act: str) -> None:
    """Wait (15 s at most) until one release of ``act`` runs on each host: a deploy retires the
    old one a second after its switch, in the background. Until it has gone, a connection to
    the act's own ``http_port`` may land on the old vassal's socket (both bind it, with
    reuse-port) and be reset as it closes: a known gap of ``http_port``, not of the gigs, which
    nginx reaches through the stable socket link."""
    for host in HOSTS:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            args = stage.fleet.run(host, ["ps", "-eo", "args"]).stdout
            if len(set(re.findall(rf"\[mono/{act}@([^\]\s]+)\]", args))) <= 1:
                break
            time.sleep(0.2)


def deploy_all(stage, revision: str) -> dict[str, dict]:
    """Deploy the three acts of the repository as it is; check what each sent and migrated."""
    deployed = {}
    for number, act in enumerate(ACTS):
        run = deployed[act] = deploy(stage, act)
        for host, (commands, kib) in run["totals"].items():
            # probe, release, start, switch; a migration on one host; a venue build at first,
            # after a second look at the wheels the host has (the venue's digest depends on the
            # host's platform, known from the probe)
            assert commands <= 7, run["output"]
            if number:  # the tree is on the host: the release step reads only the env file
                assert kib < 100, (revision, act, host, run["output"])
        if number:
            assert run["output"].count("(tree already on the host)") == len(HOSTS)
    assert len({run["release"].rsplit("-", 1)[1] for run in deployed.values()}) == 1
    # Each logical database was migrated once in its physical home: PostgreSQL on one host,
    # each host's sqlite file on that host; and only by the act that migrates it.
    assert migrations(stage, deployed["api"]["release"]) == [("h1", "greetings")]
    assert migrations(stage, deployed["shop"]["release"]) == [(h, "users") for h in HOSTS]
    assert migrations(stage, deployed["board"]["release"]) == []
    wait_for_one_release(stage, "board")
    for host in HOSTS:
        assert answer(stage, host, "/", SHOP)["release"] == deployed["shop"]["release"]
        assert answer(stage, host, "/greetings", API)["release"] == deployed["api"]["release"]
        assert answer(stage, host, "/", port=BOARD_PORT)["release"] == \
            deployed["board"]["release"]
    return deployed


def test_three_services_share_a_tree_and_keep_their_rows(mono):
    stage = mono
    first = deploy_all(stage, "first")
    assert all(kib > 256 for _, kib in first["api"]["totals"].values())  # the tree went up

    for host in HOSTS:
        stage.fleet.run(host, ["curl", "-sS", "--noproxy", "*", "-H", f"Host: {SHOP}",
                               "--data", f"name=Ada-{host}", "http://127.0.0.1/greet"])
    stage.fleet.run("h2", ["curl", "-sS", "--noproxy", "*", "-H", f"Host: {API}",
                           "--data", "text=Hi from the API", "http://127.0.0.1/greetings"])

    settings = stage.source / "libs" / "common" / "settings.py"
    for revision in range(3):
        settings.write_text(settings.read_text() + f"# revision {revision}\n")
        latest = deploy_all(stage, f"revision {revision}")
        # A delta, not the tree with its 256 KiB blob: command text is most of what is sent.
        assert max(kib for _, kib in latest["api"]["totals"].values()) < 100
        uploads = re.findall(r"\(1 changed, 0 removed from tree \w+, ([0-9.]+) KiB\)",
                             latest["api"]["output"])
        assert len(uploads) == len(HOSTS) and all(float(k) < 4 for k in uploads), uploads
    rows(stage)

    stage.cli("rollback", "shop")
    for host in HOSTS:
        assert answer(stage, host, "/", SHOP)["release"] != latest["shop"]["release"]
    rows(stage)


def rows(stage) -> None:
    """What was written through the services is still there, through each of them."""
    greetings = answer(stage, "h1", "/greetings", API)["greetings"]
    assert greetings == ["Hello, Ada-h1!", "Hello, Ada-h2!", "Hi from the API"]
    for host in HOSTS:
        assert answer(stage, host, "/", port=BOARD_PORT)["people"] == [f"Ada-{host}"]
        shop = answer(stage, host, "/", SHOP)
        assert (shop["people"], shop["greetings"]) == (1, 3)


def test_an_unmapped_logical_database_is_refused_naming_act_and_database(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"DJANGO_SECRET_KEY={SECRET_KEY}\nGREETINGS_PASSWORD=x\n")
    (tmp_path / "inventories").mkdir()
    inventory = tmp_path / "inventories" / "mono.toml"
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("")
    text = inventory_text(SimpleNamespace(ssh_config=ssh_config), repo, secrets)
    inventory.write_text(text.replace('databases = ["users"]\n', 'databases = ["audit"]\n'))
    done = backstage("check", "--inventory", str(inventory), cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "acts.board.databases: unknown database 'audit' (known: greetings, users)")
    assert len(done.stderr.strip().splitlines()) == 1
