"""Least privilege in the system layout: each act as its own unix user, a deploy through sudo.

A fleet host gets two productions ("lp" and "two", the example act in each, so two act users),
deployed over SSH as root. The act's processes, socket, env file and files are checked on the
host, and what the act user can and cannot write is tried as that user. Another host is
deployed by an unprivileged SSH user through ``sudo -n`` with exactly the README's sudo rule.
"""

import json
import re
import shlex

import pytest

from backstage.model import load_production
from tests.deploying import DOMAIN, REPO, backstage, make_stage

pytestmark = pytest.mark.fleet

ROOT = "/srv/backstage/lp"
USER = "bs-lp-storefront"
OTHER_USER = "bs-two-storefront"
# The rule the README gives for an SSH user "deploy" with become = "sudo".
SUDO_RULE = "deploy ALL=(root) NOPASSWD: /usr/bin/bash, /usr/bin/python3\n"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("lp"), "lp", {"h1": 'roles = ["web"]'})
    two = stage.inventory.with_name("two.toml")
    two.write_text(stage.inventory.read_text().replace(DOMAIN, "two.example.test"))
    try:
        for inventory in (stage.inventory, two):
            backstage("setup-stage", "--inventory", str(inventory), cwd=stage.work)
            backstage("deploy-act", "storefront", "--inventory", str(inventory), cwd=stage.work)
        yield stage
    finally:
        stage.fleet.stop()


def on_host(stage, command: str, check: bool = True):
    return stage.fleet.run("h1", command, check=check)


def as_user(stage, user: str, command: str):
    """Run a shell command on the host as a user, with that user's groups (as the act runs)."""
    return stage.fleet.run("h1", ["setpriv", "--reuid", user, "--regid", user, "--init-groups",
                                  "--", "bash", "-c", command], check=False)


def live_release(stage, root: str = ROOT) -> str:
    return on_host(stage, f"readlink {root}/acts/storefront/current").stdout.strip().split("/")[-1]


def vassal_uids(stage, procname: str) -> list[str]:
    """Real, effective, saved and filesystem uids of every process whose title starts with
    procname, read from /proc on the host."""
    script = ("for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null) || continue; "
              f"case \"$c\" in {shlex.quote(procname)}*) "
              "awk '/^Uid:/ {print $2, $3, $4, $5}' $p/status;; esac; done")
    return on_host(stage, script).stdout.split("\n")[:-1]


def test_act_user_is_a_system_account_without_login(stage):
    entry = on_host(stage, f"getent passwd {USER}").stdout.strip().split(":")
    assert entry[6] == "/usr/sbin/nologin"
    assert 0 < int(entry[2]) < 1000  # a system account
    assert on_host(stage, f"getent shadow {USER}").stdout.split(":")[1] in ("!", "*", "!*")
    assert "bs-lp" in on_host(stage, f"id -nG {USER}").stdout.split()


def test_vassal_processes_run_as_the_act_user(stage):
    uid = on_host(stage, f"id -u {USER}").stdout.strip()
    uids = vassal_uids(stage, f"[lp/storefront@{live_release(stage)}]")
    assert len(uids) >= 3, uids  # the master and its two workers
    assert set(uids) == {" ".join([uid] * 4)}
    # The Emperor stays root: it starts each vassal, which drops to its act user.
    emperor = on_host(stage, f"cat {ROOT}/run/emperor.pid").stdout.strip()
    assert on_host(stage, f"stat -c %u /proc/{emperor}").stdout.strip() == "0"


def test_socket_and_env_file_permissions(stage):
    release = live_release(stage)
    sock = f"{ROOT}/run/storefront/{release}.sock"
    assert on_host(stage, f"stat -c '%A %U %G' {sock}").stdout.split() == [
        "srw-rw----", USER, "www-data"]
    assert on_host(stage, f"readlink {ROOT}/run/storefront.sock").stdout.strip() == \
        f"storefront/{release}.sock"
    env = f"{ROOT}/acts/storefront/env/env-{release}"
    assert on_host(stage, f"stat -c '%a %U' {env}").stdout.split() == ["600", USER]


def test_the_act_cannot_write_its_code_or_venue(stage):
    release_dir = f"{ROOT}/acts/storefront/releases/{live_release(stage)}"
    venue = on_host(stage, f"readlink -f {ROOT}/venues/storefront").stdout.strip()
    for path in (release_dir, f"{release_dir}/.backstage-static", venue, f"{venue}/bin",
                 f"{ROOT}/vassals", f"{ROOT}/acts/storefront/env", f"{ROOT}/run"):
        attempt = as_user(stage, USER, f"touch {path}/intruder")
        assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, path
    attempt = as_user(stage, USER, f"echo x >> {release_dir}/manage.py")
    assert attempt.returncode != 0
    assert on_host(stage, f"find {release_dir} {venue} ! -user root | head").stdout == ""
    # ...but it can write its own state.
    for path in (f"{ROOT}/acts/storefront/media", f"{ROOT}/acts/storefront/shared"):
        assert as_user(stage, USER, f"touch {path}/ok").returncode == 0, path


def test_nginx_serves_page_static_and_media(stage):
    status, body = stage.page("/")
    assert status == 200 and "Welcome to the storefront" in body
    assert stage.page("/static/greetings/style.css")[0] == 200
    media = f"{ROOT}/acts/storefront/media"
    assert as_user(stage, USER, f"echo hello > {media}/note.txt").returncode == 0
    assert stage.page("/media/note.txt") == (200, "hello\n")


def test_rows_persist_across_a_redeploy_and_sqlite_files_belong_to_the_act(stage):
    assert json.loads(stage.post("/api/greet", "name=Ada")) == {"people": 1, "greetings": 1}
    with (stage.source / "greetings" / "views.py").open("a") as f:
        f.write("\n# a change, so the next deploy makes a new release\n")
    before = live_release(stage)
    stage.cli("deploy-act", "storefront")
    assert live_release(stage) != before
    assert json.loads(stage.post("/api/greet", "name=Bo")) == {"people": 2, "greetings": 2}
    owners = on_host(stage, f"stat -c '%U %a %n' {ROOT}/data/*.sqlite3").stdout.splitlines()
    assert len(owners) == 2 and all(line.startswith(f"{USER} 640 ") for line in owners), owners


def test_two_acts_run_as_two_users_who_cannot_read_each_other(stage):
    assert vassal_uids(stage, f"[two/storefront@{live_release(stage, '/srv/backstage/two')}]")
    other = on_host(stage, f"id -u {OTHER_USER}").stdout.strip()
    assert other != on_host(stage, f"id -u {USER}").stdout.strip()
    env = f"{ROOT}/acts/storefront/env/env-{live_release(stage)}"
    attempt = as_user(stage, OTHER_USER, f"cat {env}")
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr
    assert as_user(stage, OTHER_USER, f"ls {ROOT}/data").returncode != 0
    assert as_user(stage, USER, f"cat {env}").returncode == 0  # the control


def test_setup_stage_again_changes_nothing(stage):
    snapshot = (f"find {ROOT}/data {ROOT}/run -maxdepth 0 -printf '%u %g %m\\n'; "
                "md5sum /etc/passwd /etc/group")
    before = on_host(stage, snapshot).stdout
    done = stage.cli("setup-stage")
    assert "nothing to change" in done.stderr, done.stderr
    assert on_host(stage, snapshot).stdout == before


# --- a non-root SSH user with sudo ----------------------------------------------------------------

def test_deploy_through_sudo(tmp_path):
    host = 'roles = ["web"]\nuser = "deploy"\nbecome = "sudo"'
    stage = make_stage(tmp_path, "viasudo", {"h1": host}, users=("deploy",))
    try:
        # Without a sudo rule, sudo -n fails at once and nothing changes on the host.
        refused = stage.cli("setup-stage", check=False)
        assert refused.returncode == 1 and "sudo" in refused.stderr + refused.stdout
        assert on_host(stage, "ls /srv").stdout == ""

        stage.fleet.run("h1", "cat > /etc/sudoers.d/backstage && "
                        "chmod 440 /etc/sudoers.d/backstage && visudo -cq", input=SUDO_RULE)
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        status, body = stage.page("/")
        assert status == 200 and "Welcome to the storefront" in body
        assert json.loads(stage.post("/api/greet", "name=Ada")) == {"people": 1, "greetings": 1}
        uid = on_host(stage, "id -u bs-viasudo-storefront").stdout.strip()
        release = on_host(stage, "readlink /srv/backstage/viasudo/acts/storefront/current").stdout
        uids = vassal_uids(stage, f"[viasudo/storefront@{release.strip().split('/')[-1]}]")
        assert uids and set(uids) == {" ".join([uid] * 4)}
    finally:
        stage.fleet.stop()


def test_system_layout_refuses_a_non_root_user_without_become(tmp_path):
    stage = make_stage(tmp_path, "nobecome", {"h1": 'user = "deploy"'}, users=("deploy",))
    try:
        done = stage.cli("setup-stage", check=False)
        assert done.returncode == 1
        assert re.search(r"h1: the system layout needs root, but commands run as deploy", done.stderr)
        assert on_host(stage, "ls /srv").stdout == ""
    finally:
        stage.fleet.stop()


def test_inventory_refuses_bad_act_users(stage):
    text = stage.inventory.read_text()
    for user, reason in (("root", "system account"), ("Bad!", "bad user name"),
                         ("www-data", "system account")):
        bad = stage.inventory.with_name("bad.toml")
        bad.write_text(text.replace('venue = "storefront"', f'venue = "storefront"\nuser = "{user}"'))
        done = backstage("setup-stage", "--inventory", str(bad), cwd=stage.work, check=False)
        assert done.returncode == 2, done.stderr
        assert "acts.storefront.user" in done.stderr and reason in done.stderr
        bad.unlink()
    assert load_production(stage.inventory).act_user("storefront") == USER


def test_readme_gives_the_sudo_rule_this_test_installs():
    assert SUDO_RULE.strip() in (REPO / "README.md").read_text()
