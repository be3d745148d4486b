"""``remove-act`` on a real fleet host, in order: a second act ("outlet", its own user, venue,
databases and gig) is removed while the example act serves under load; nothing of it is left
but its data; a purge is refused without a confirmation, then deletes the data."""

import json

import pytest

from tests.support.deploying import Load, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "rm"
ROOT = f"/srv/backstage/{PRODUCTION}"
USER = f"bs-{PRODUCTION}-outlet"
OUTLET = "outlet.example.test"
DATA = [f"{ROOT}/data/outlet-users.sqlite3", f"{ROOT}/data/outlet-greetings.sqlite3"]


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("rm"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        text = stage.inventory.read_text()
        act = text[text.index("[acts.storefront]"):text.index("[databases.")]
        venue = text[text.index("[venues.storefront]"):text.index("[acts.storefront]")]
        outlet = (act.replace("[acts.storefront]", "[acts.outlet]")
                  .replace('venue = "storefront"', 'venue = "outlet"')
                  .replace('databases = ["users", "greetings"]',
                           'databases = { users = "outlet-users", greetings = "outlet-greetings" }'))
        stage.inventory.write_text(
            text + "\n" + venue.replace("[venues.storefront]", "[venues.outlet]") + outlet
            + "[databases.outlet-users]\n[databases.outlet-greetings]\n"
            + f'[gigs.outlet]\nact = "outlet"\ndomains = ["{OUTLET}"]\n')
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront,outlet")
        yield stage
    finally:
        stage.fleet.stop()


def run(stage, *words: str, check: bool = False):
    return stage.fleet.run("h1", list(words), check=check)


def outlet_page(stage) -> int:
    return stage.fleet.http("h1", "/", host_header=OUTLET)[0]


def test_remove_act_leaves_nothing_of_the_act_but_its_data(stage):
    assert outlet_page(stage) == 200 and run(stage, "id", "-u", USER).returncode == 0
    load = Load(stage, connections=20)  # on the example act, which keeps serving
    done = stage.cli("remove-act", "outlet", "--json")
    result = load.finish()
    assert result["requests"] > 0 and result["socket_errors"] == 0 and result["non_2xx"] == 0
    assert json.loads(done.stdout)["hosts"]["h1"] == {"removed": "outlet", "purged": False}

    assert outlet_page(stage) == 404  # the default server: no gig books it any more
    assert stage.page("/")[0] == 200
    assert run(stage, "id", "-u", USER).returncode != 0
    assert run(stage, "getent", "group", USER).returncode != 0
    processes = run(stage, "ps", "-eo", "user:32,args").stdout
    assert USER not in processes and "outlet@" not in processes
    leftovers = run(stage, "find", ROOT, "/etc/nginx/sites-enabled", "-name", "*outlet*",
                    "-not", "-path", f"{ROOT}/data/*", "-not", "-path", f"{ROOT}/acts/outlet",
                    "-not", "-path", f"{ROOT}/backups/outlet",  # its snapshots: data, kept
                    "-not", "-path", f"{ROOT}/acts/outlet/*").stdout.split()
    assert [p for p in leftovers if not p.startswith(f"{ROOT}/log/nginx-outlet")] == []
    assert run(stage, "ls", f"{ROOT}/acts/outlet").stdout.split() == ["media", "shared"]
    # Kept, and root's now: a user made later with the freed uid does not inherit them.
    owners = run(stage, "stat", "-c", "%U", *DATA, f"{ROOT}/acts/outlet/media").stdout.split()
    assert owners == ["root"] * 3
    assert run(stage, "ls", f"{ROOT}/venues").stdout.count("storefront") == 2  # link, folder
    entry = json.loads(stage.cli("history", "--json").stdout.splitlines()[0])
    assert (entry["event"], entry["act"], entry["purge"]) == ("remove-act", "outlet", False)


def test_purge_needs_a_confirmation(stage):
    done = stage.cli("remove-act", "outlet", "--purge-data", check=False)
    assert done.returncode == 2 and "confirm with --yes" in done.stderr
    assert run(stage, "ls", *DATA).returncode == 0


def test_purge_deletes_the_data(stage):
    stage.cli("remove-act", "outlet", "--purge-data", "--yes")
    assert run(stage, "ls", *DATA).returncode != 0
    assert run(stage, "test", "-e", f"{ROOT}/acts/outlet").returncode != 0
    assert run(stage, "ls", f"{ROOT}/data/users.sqlite3").returncode == 0  # the other act's
    assert stage.page("/")[0] == 200
