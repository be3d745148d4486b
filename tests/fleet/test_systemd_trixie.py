"""A fresh Debian 13 (trixie: systemd 257, Python 3.13) server: booted, provisioned, rebooted.

One systemd fleet host of the trixie image (see :mod:`backstage.sandbox.machines`) shared by
the module. Provisioning is driven as ``setup-stage`` drives it, minus what needs a workstation
of the host's Python: the host helper's probe, :func:`backstage.model.provision.decide`, and the
commands of :mod:`backstage.commands.provision`, sent to the host. ``setup-stage`` and deploys
to such a host, from this workstation, are ``test_systemd_trixie_deploy.py``'s.
"""

import json

import pytest

from backstage.commands import hostside_inline
from backstage.commands.provision import provision
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout
from backstage.model.provision import SYSCTL_FILE, decide
from backstage.render import LISTEN_BACKLOG
from backstage.sandbox.fleet import fleet_available
from backstage.sandbox.images import Image
from backstage.sandbox.machines import SystemdFleet, machines_available
from tests.support.fleet_fixtures import RUN_PREFIX

pytestmark = pytest.mark.fleet

LAYOUT = Layout("fresh", "system", "/srv/backstage", 80)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    reason = fleet_available() or machines_available()
    if reason:
        pytest.skip(reason)
    fleet = SystemdFleet(tmp_path_factory.mktemp("sd13") / "fleet", Image("trixie"),
                         prefix=RUN_PREFIX)
    try:
        fleet.start(["t1"])
        yield fleet
    finally:
        fleet.stop()


def probe(fleet):
    """The host helper's probe, as setup-stage runs it (sent whole: nothing is installed)."""
    out = fleet.run("t1", ["bash", "-c", hostside_inline(
        "python3", "probe", {"sysctl_file": SYSCTL_FILE})]).stdout
    return Observed(LAYOUT, json.loads(out))


def test_the_host_runs_systemd_257_as_pid_1_and_python_3_13(fleet):
    assert fleet.run("t1", "systemctl --version").stdout.startswith("systemd 257 ")
    assert fleet.run("t1", "cat /proc/1/comm").stdout.strip() == "systemd"
    assert fleet.run("t1", "systemctl is-system-running").stdout.strip() == "running"
    assert fleet.run("t1", "cat /etc/debian_version").stdout.startswith("13.")
    facts = probe(fleet).host_facts()
    assert facts.python == "3.13" and facts.default_python and facts.systemd


def test_a_fresh_host_without_a_source_is_told_what_to_install(fleet):
    with pytest.raises(ValueError, match=r"^t1: nginx, python3-venv, libpython3.13, libxml2 not "
                                         r"installed and the host has no apt package source"):
        decide("t1", probe(fleet).host_facts(), LISTEN_BACKLOG)


def test_provisioning_installs_from_the_local_repository_once(fleet):
    fleet.add_apt_source("t1")
    plan = decide("t1", probe(fleet).host_facts(), LISTEN_BACKLOG)
    assert plan.packages == ("nginx", "python3-venv", "libpython3.13", "libxml2")
    assert plan.enable_nginx and plan.sysctl_text
    fleet.run("t1", ["bash", "-c", provision(Script(), plan).text()], timeout=300)
    after = probe(fleet).host_facts()
    assert not decide("t1", after, LISTEN_BACKLOG), after  # a second run changes nothing
    assert fleet.run("t1", "systemctl is-enabled nginx; systemctl is-active nginx").stdout \
        .split() == ["enabled", "active"]
    fleet.run("t1", "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version")


def test_nginx_comes_back_after_a_reboot(fleet):
    fleet.restart("t1")
    assert fleet.run("t1", "systemctl is-active nginx").stdout.strip() == "active"
    status, _ = fleet.http("t1", "/")
    assert status in (200, 404), status  # Debian's default site answers
