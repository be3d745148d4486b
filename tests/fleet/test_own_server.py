"""The README's "Deploy to your own server in five steps", run verbatim.

A Django project made by ``django-admin startproject`` (no file of it changed) and a freshly
booted Debian 12 server (systemd, only sshd and python3, the test setup's offline apt mirror as
its package source) known to ``ssh`` as ``myserver`` through ``~/.ssh/config`` in a home of the
test's own. Steps 2 to 5 are the README's code blocks, each run by bash in the project's folder
with the test's ``backstage`` first on the PATH; step 1 (installing Backstage) is the wheel test
of ``tests/test_top_level.py``.
"""

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backstage.sandbox.fleet import fleet_available
from backstage.sandbox.images import Image
from backstage.sandbox.machines import SystemdFleet, machines_available
from tests.support.fleet_fixtures import RUN_PREFIX

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Deploy to your own server in five steps"
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of each code block of the README's own-server section, in order."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end != -1 else None]
    return [(lang, textwrap.dedent(text)) for _, lang, text in BLOCK.findall(section)]


def test_the_section_has_the_install_the_inventory_and_the_commands():
    kinds = [lang for lang, _ in readme_blocks()]
    assert kinds == ["sh", "toml", "sh", "sh", "sh"], kinds
    install = readme_blocks()[0][1]
    assert "pipx install" in install


def project_digests(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(project.rglob("*.py")) + [project / "requirements.txt"]}


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    reason = fleet_available() or machines_available()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("own-server")
    fleet = SystemdFleet(work / "fleet", Image("bookworm"), prefix=RUN_PREFIX)
    fleet.start(["h1"])
    try:
        fleet.add_apt_source("h1")  # the server's package source: an (offline) mirror
        yield work, fleet
    finally:
        fleet.stop()


def user_home(work: Path, fleet: SystemdFleet) -> Path:
    """A home whose ssh_config names the fleet host ``myserver``, with the fleet's client key,
    and no known_hosts yet (step 4 records the key)."""
    home = work / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    entry = fleet.ssh_config.read_text().split("\n\n")[0]
    kept = [line for line in entry.splitlines()[1:]
            if line.split()[0] in ("User", "IdentityFile", "IdentitiesOnly", "BatchMode",
                                   "ProxyCommand")]
    (home / ".ssh" / "config").write_text("Host myserver\n" + "\n".join(kept) + "\n")
    return home


def test_the_readme_steps_deploy_an_unmodified_startproject_to_a_fresh_server(own_server):
    work, fleet = own_server
    home = user_home(work, fleet)
    project = work / "mysite"
    subprocess.run([str(Path(sys.executable).parent / "django-admin"), "startproject", "mysite",
                    str(project.mkdir() or project)], check=True)
    (project / "requirements.txt").write_text("Django>=5.2,<5.3\n")
    before = project_digests(project)

    blocks = readme_blocks()
    inventory = blocks[1][1]
    path = inventory.splitlines()[0].removeprefix("# ")
    (project / path).parent.mkdir(parents=True)
    (project / path).write_text(inventory)
    env = {"HOME": str(home), "LANG": "C.UTF-8",
           # Root's caches: pins and wheels fetched by other tests (the test reaches no index).
           "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
           "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}
    for _, script in blocks[2:]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=env,
                              text=True, capture_output=True, timeout=900, check=False)
        output = done.stdout + done.stderr
        assert done.returncode == 0 and "Traceback" not in output, f"{script}\n{output}"

    assert "myserver" in (home / ".ssh" / "known_hosts").read_text()
    assert project_digests(project) == before
    status, body = fleet.http("h1", "/admin/login/", host_header="www.example.com")
    assert status == 200 and "Django administration" in body, (status, body[:500])
    status, _ = fleet.http("h1", "/static/admin/css/base.css", host_header="www.example.com")
    assert status == 200
    # The project's "default" database is the logical one, outside the release, migrated.
    count = ("import sqlite3; print(sqlite3.connect('/srv/backstage/mysite/data/mysite.sqlite3')"
             ".execute('select count(*) from django_migrations').fetchone()[0])")
    assert int(fleet.run("h1", ["python3", "-c", count]).stdout) > 10
