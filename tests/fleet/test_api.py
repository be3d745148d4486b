"""The Python API (backstage.shortcuts) against a namespace host over SSH, and the ``new-act``
task's act deployed to one. The local tests are tests/test_api.py."""

from pathlib import Path

import pytest

from tests.support.testbed import backstage
from tests.test_api import (
    SNIPPET,
    run_snippet,
    state_home,  # noqa: F401  (autouse: this module's own port registry)
)


def fleet_inventory(fleet, folder: Path, production: str, extra: str = "") -> Path:
    (folder / "inventories").mkdir(exist_ok=True)
    inventory = folder / "inventories" / f"{production}.toml"
    inventory.write_text(f'[ssh]\nconfig = "{fleet.ssh_config}"\n\n[hosts.h1]\n\n{extra}')
    return inventory


@pytest.mark.fleet
def test_snippet_with_host_serves_from_inside_the_host(fleet_factory, tmp_path, monkeypatch):
    from backstage.shortcuts import Venue

    fleet = fleet_factory(("h1",))
    fleet_inventory(fleet, tmp_path, "staging")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    lines = SNIPPET.splitlines()
    remote = "'/srv/venues', host='h1', production='staging'"
    run_snippet(lines[:4], namespace, tmp_path, **{"'/tmp'": remote})
    venue, act = namespace["venue"], namespace["act"]
    port = act.get_uwsgi_port()
    assert venue.host == "h1" and not Path("/srv/venues/MyVenue").exists()
    status, body = fleet.http("h1", "/", port=port, host_header="localhost")
    assert status == 200 and "<h1>MyAct</h1>" in body

    run_snippet(lines[4:5], namespace, tmp_path)  # act.stop()
    assert fleet.http("h1", "/", port=port) == (0, "")
    assert "MyVenue/MyAct" not in fleet.run("h1", ["ps", "-eo", "args"]).stdout
    run_snippet(lines[5:6], namespace, tmp_path)  # act.start()
    assert fleet.http("h1", "/", port=port, host_header="localhost")[0] == 200
    venue.close()

    fleet.restart("h1")  # a reboot: processes gone, /srv kept
    with Venue("/srv/venues/MyVenue", host="h1", production="staging") as again:
        back = again.acts["MyAct"]
        assert back.get_uwsgi_port() == port and back.status()["state"] == "down"
        again.start_all()
        assert fleet.http("h1", "/", port=port, host_header="localhost")[0] == 200


@pytest.mark.fleet
def test_new_act_task_scaffolds_an_act_deploy_act_deploys(fleet_factory, tmp_path):
    fleet = fleet_factory(("h1",))
    printed = backstage("new-act", "shop", "--path", "shop", "--domain", "shop.example.test",
                        cwd=tmp_path).stdout
    assert (tmp_path / "shop" / "manage.py").is_file()
    assert oct((tmp_path / "secrets" / "shop.env").stat().st_mode & 0o777) == "0o600"
    inventory = fleet_inventory(fleet, tmp_path, "api", printed)
    backstage("check", "--inventory", str(inventory), cwd=tmp_path)
    backstage("setup-stage", "--inventory", str(inventory), cwd=tmp_path)
    backstage("deploy-act", "shop", "--inventory", str(inventory), cwd=tmp_path)
    status, body = fleet.http("h1", "/", host_header="shop.example.test")
    assert status == 200 and "<h1>shop</h1>" in body and "production api" in body
    assert fleet.http("h1", "/static/shop/style.css", host_header="shop.example.test")[0] == 200
    assert fleet.http("h1", "/healthz", host_header="shop.example.test") == (200, "ok")
