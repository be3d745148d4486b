"""One rollout over bare systemd hosts of Debian 12 and Debian 13, from a Python 3.11 workstation.

h1 boots the bookworm image (Python 3.11, glibc 2.36: this workstation's platform), t1 and t2
the trixie image (Python 3.13, glibc 2.41); t1 has the builder role. All three start as fresh
servers with the local apt repository as their package source. One ``setup-stage`` provisions
them all and compiles the Emperor's uWSGI once per platform: for Debian 13 on t1 (which it
gives a compiler first), for Debian 12 on the workstation; t2 gets t1's wheel and no compiler.
One ``deploy-act`` then serves the storefront on all three.
"""

import re

import pytest

from backstage.sandbox.images import Image
from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet

PRODUCTION = "mixed"
ROOT = f"/srv/backstage/{PRODUCTION}"
BUILT = re.compile(r"^(.+?)\s+built (uwsgi-2\.0\.31-\S+\.whl) for (\S+)$",
                   re.MULTILINE | re.IGNORECASE)
HOSTS = {"h1": 'roles = ["web"]', "t1": 'roles = ["web", "builder"]', "t2": 'roles = ["web"]'}
PYTHONS = {"h1": "3.11", "t1": "3.13", "t2": "3.13"}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    work = tmp_path_factory.mktemp("sdmixed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BACKSTAGE_CACHE", str(work / "cache"))  # a cold workstation cache
        stage = make_stage(work, PRODUCTION, HOSTS, image=Image("bookworm"),
                           images={"t1": Image("trixie"), "t2": Image("trixie")})
        try:
            for host in HOSTS:
                stage.fleet.add_apt_source(host)
            yield stage
        finally:
            stage.fleet.stop()


def has_gcc(stage, host: str) -> bool:
    return stage.fleet.run(host, "command -v gcc", check=False).returncode == 0


def test_one_setup_stage_compiles_uwsgi_once_per_platform(stage):
    assert not any(has_gcc(stage, host) for host in HOSTS)
    done = stage.cli("setup-stage")
    output = done.stdout + done.stderr
    built = sorted((key, host) for host, _, key in BUILT.findall(output))
    assert built == [("cp311-cp311-manylinux_2_36_x86_64", "this workstation"),
                     ("cp313-cp313-manylinux_2_41_x86_64", "t1")], output
    assert [has_gcc(stage, host) for host in HOSTS] == [False, True, False]
    wheelhouse = {host: stage.fleet.run(host, f"ls {ROOT}/wheelhouse").stdout.split()
                  for host in HOSTS}
    assert wheelhouse["t2"] == wheelhouse["t1"] != wheelhouse["h1"]


def test_one_rollout_serves_the_storefront_on_both_releases(stage):
    stage.cli("deploy-act", "storefront")
    for host, python in PYTHONS.items():
        status, body = stage.page("/", host=host)
        assert status == 200 and "Welcome to the storefront" in body, (host, body)
        assert stage.page("/static/greetings/style.css", host=host)[0] == 200
        venue = stage.fleet.run(host, f"readlink -f {ROOT}/venues/storefront/bin/python")
        assert venue.stdout.strip().endswith(f"python{python}"), host
        release = stage.fleet.run(host, "cat /etc/debian_version").stdout
        assert release.startswith("12." if python == "3.11" else "13."), host
