"""Artefacts for the host, on fleet hosts: uWSGI compiled once per platform on a builder, and
one rollout to hosts of two Debian releases (unit tests: tests/test_host_platforms.py)."""

import re
import sys

import pytest

from backstage.artefacts.platforms import Platform
from backstage.remote import hostside
from backstage.sandbox.userland import userland
from tests.support.deploying import make_stage

BUILT = re.compile(r"^(\S+)\s+built (uwsgi-2\.0\.31-\S+\.whl) for (\S+)$",
                   re.MULTILINE | re.IGNORECASE)


@pytest.mark.fleet
def test_uwsgi_is_compiled_once_per_platform_on_the_builder_and_shipped_to_the_others(
        tmp_path, monkeypatch):
    """A cold workstation cache: setup-stage of three hosts of one platform compiles the
    Emperor's uWSGI (an sdist: no wheel exists) once, on the host with the builder role, and
    ships that wheel to the others; a later setup-stage, or a new host, compiles nothing."""
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    stage = make_stage(tmp_path, "plat", {"h1": 'roles = ["web"]', "h2": 'roles = ["web"]',
                                          "b1": 'roles = ["builder"]'})
    try:
        done = stage.cli("setup-stage")
        built = BUILT.findall(done.stdout + done.stderr)
        platform = Platform.from_probe(hostside.platform_facts())
        assert [(host, key) for host, _, key in built] == [("b1", platform.key)], done.stdout
        wheel = built[0][1]
        for host in ("h1", "h2", "b1"):
            assert stage.fleet.run(host, ["ls", "/srv/backstage/plat/wheelhouse"]).stdout \
                .split() == [wheel]
        stage.cli("deploy-act", "storefront")
        for host in ("h1", "h2"):
            assert stage.page("/", host=host)[0] == 200
        again = stage.cli("setup-stage")
        assert not BUILT.findall(again.stdout + again.stderr)
        assert len(list((tmp_path / "cache" / "platforms").glob("*/built/*"))) == 1
    finally:
        stage.fleet.stop()


@pytest.mark.fleet
def test_a_python_311_workstation_deploys_to_debian_12_and_debian_13_hosts_in_one_rollout(
        tmp_path, monkeypatch):
    """The workstation runs Python 3.11; h1 runs Debian 12's userland (Python 3.11, glibc
    2.36), h2 and h3 Debian 13's (Python 3.13, glibc 2.41). One setup-stage and one deploy of
    the storefront act serve on all three; uWSGI is compiled once per platform, on a host of
    that platform; each host's venue holds wheels its own Python accepts."""
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    trixie = userland("trixie")
    stage = make_stage(tmp_path, "mixed", {h: 'roles = ["web"]' for h in ("h1", "h2", "h3")},
                       userlands={"h2": trixie, "h3": trixie})
    try:
        version = "import sys; print(sys.version_info[:2])"
        versions = {h: stage.fleet.run(h, ["python3", "-c", version]).stdout.strip()
                    for h in ("h1", "h2", "h3")}
        assert versions == {"h1": "(3, 11)", "h2": "(3, 13)", "h3": "(3, 13)"}
        assert sys.version_info[:2] == (3, 11)
        done = stage.cli("setup-stage")
        built = sorted((host, key) for host, _, key in BUILT.findall(done.stdout + done.stderr))
        assert [key for _, key in built] == ["cp311-cp311-manylinux_2_36_x86_64",
                                             "cp313-cp313-manylinux_2_41_x86_64"], \
            done.stdout + done.stderr
        assert built[0][0] == "h1" and built[1][0] in ("h2", "h3")
        stage.cli("deploy-act", "storefront")
        for host in ("h1", "h2", "h3"):
            status, body = stage.page("/", host=host)
            assert status == 200, body
            python = stage.fleet.run(host, ["readlink", "-f",
                                            "/srv/backstage/mixed/venues/storefront/bin/python"])
            assert python.stdout.strip().endswith("3.11" if host == "h1" else "3.13")
    finally:
        stage.fleet.stop()
