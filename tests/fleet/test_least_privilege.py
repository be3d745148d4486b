"""Least privilege in the system layout: each act as its own unix user, a deploy through sudo.

A fleet host gets two productions ("lp" and "two", the example act in each, so two act users),
deployed over SSH as root. The act's processes, socket, env file and files are checked on the
host, and what the act user can and cannot write is tried as that user. Another host is
deployed by an unprivileged SSH user through ``sudo -n`` with exactly the README's sudo rule.
"""

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backstage.model import load_production
from tests.support.deploying import DOMAIN, REPO, backstage, make_stage

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


# --- what an act's user can turn against root, nginx or other users (issue 12) --------------------

CANARY = "/etc/backstage-canary"
# Run on the host as the act's user: the attack on uWSGI's bind-then-chown of the act's socket.
SWAP_SOCKET = r'''
import json, os, stat, sys, time

sock, target, procname, seconds, period = sys.argv[1:6]
deadline, period = time.monotonic() + float(seconds), float(period)
ready = sock + ".ready"
report = {"kills": 0, "swaps": 0, "errors": []}


def note(error):
    if str(error) not in report["errors"]:
        report["errors"].append(str(error))


def kill_masters():
    """SIGKILL the act's own uWSGI master: the Emperor starts the vassal again, which binds
    its socket again, as root."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if cmdline.startswith(procname.encode()) and b"master" in cmdline:
                os.kill(int(pid), 9)
                report["kills"] += 1
        except OSError:
            pass


next_kill = 0.0
while time.monotonic() < deadline and os.stat(target).st_uid != os.getuid():
    if time.monotonic() >= next_kill:
        kill_masters()
        next_kill = time.monotonic() + period
    try:
        if not os.path.islink(ready):
            os.symlink(target, ready)
        st = os.lstat(sock)
        if stat.S_ISSOCK(st.st_mode) and st.st_uid == 0:  # bound, not chowned yet
            os.rename(ready, sock)
            report["swaps"] += 1
    except OSError as exc:
        note(exc)
    time.sleep(0.002)
report["owned"] = os.stat(target).st_uid == os.getuid()
print(json.dumps(report))
'''


def emperor_pids(stage, root: str = ROOT) -> list[str]:
    ini = f"{root}/stage/emperor.ini".replace(".", r"\.")
    return on_host(stage, f"pgrep -u 0 -f -- ' --ini {ini}$'", check=False).stdout.split()


def serving(stage, timeout: float = 60) -> None:
    """Wait until the act serves its page through nginx again."""
    deadline = time.monotonic() + timeout
    while stage.page("/")[0] != 200:
        assert time.monotonic() < deadline, "the act did not serve again"
        time.sleep(0.5)


def test_act_cannot_get_root_to_chown_a_file_through_its_socket_folder(stage):
    """Finding 1: root via the socket bind/chown race.

    uWSGI binds the vassal's socket as root, then chmods and chowns it by path, following
    links. When the act's user could write the socket's folder, it swapped the fresh
    root-owned socket for a link to a root file, and killed its own uWSGI master so that the
    Emperor bound again at will. The window is microseconds wide: unassisted, this attack
    (looping as fast as Python goes, a kill every 1.5 s) got a root file in 3 of 5 runs of
    60 s on the old code, after 14 to 47 s. Here root (the test) widens the window with
    strace, holding the vassal 1.5 s before its chmod, so polling every 2 ms is enough: on the
    old code the act owned the file after its first kill, in about 3 s. Now the folder is
    root's: the attack runs 15 s and the file stays root's.
    """
    release = live_release(stage)
    sock = f"{ROOT}/run/storefront/{release}.sock"
    stage.fleet.run("h1", f"install -m 600 /dev/null {CANARY} && cat > /tmp/swap.py",
                    input=SWAP_SOCKET)
    emperor = emperor_pids(stage)[0]
    attack = shlex.join(["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "--",
                         "python3", "/tmp/swap.py", sock, CANARY,
                         f"[lp/storefront@{release}]", "15", "5"])
    done = on_host(stage, (
        f"strace -q -f -o /dev/null -p {emperor} -e trace=chmod,fchmodat "
        f"-e inject=chmod,fchmodat:delay_enter=1500000 & tracer=$!; sleep 1; {attack}; "
        "kill $tracer; wait"))
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["kills"] >= 1, report
    assert on_host(stage, f"stat -c '%U %G %a' {CANARY}").stdout.split() == ["root", "root", "600"], \
        report
    assert not report["owned"] and report["swaps"] == 0, report
    # The Emperor bound the socket again, in root's folder, and the act serves again.
    serving(stage)
    assert on_host(stage, f"stat -c '%U %G %a' {ROOT}/run/storefront").stdout.split() == [
        "root", "www-data", "750"]
    assert on_host(stage, f"stat -c '%A %U %G' {sock}").stdout.split() == [
        "srw-rw----", USER, "www-data"]


def test_emperor_is_never_found_through_a_pidfile_an_act_or_a_crash_left(stage):
    """Finding 2: the Emperor's pidfile was 0666, and every deploy signalled its pid as root.

    The act's user writes nginx's pid into it: on the old code the next deploy sent nginx
    SIGWINCH (its workers stopped, every request timed out, the deploy failed its check
    through nginx). Then a dead pid in it (a crash, say): on the old code setup-stage started
    a second Emperor on the same vassal folder. Now the pidfile is root's 0644, the Emperor's
    stats socket takes no connection but root's, and Backstage finds the Emperor in the
    process table by its command line.
    """
    pidfile = f"{ROOT}/run/emperor.pid"
    nginx = on_host(stage, "cat /run/nginx.pid").stdout.strip()
    workers = on_host(stage, f"pgrep -P {nginx}").stdout.split()
    as_user(stage, USER, f"echo {nginx} > {pidfile}")
    with (stage.source / "greetings" / "views.py").open("a") as f:
        f.write("\n# a change, so the deploy makes a new release\n")
    before = live_release(stage)
    stage.cli("deploy-act", "storefront")
    assert live_release(stage) != before
    assert on_host(stage, f"pgrep -P {nginx}").stdout.split() == workers
    assert stage.page("/")[0] == 200

    on_host(stage, f"echo 4194000 > {pidfile}")  # no such process
    stage.cli("setup-stage")
    assert len(emperor_pids(stage)) == 1
    assert on_host(stage, f"stat -c '%U %a' {pidfile}").stdout.split() in (["root", "644"], [])
    assert on_host(stage, f"stat -c '%A %U' {ROOT}/run/emperor-stats.sock").stdout.split() == [
        "srwxr-xr-x", "root"]


def test_nginx_follows_no_link_an_act_plants_in_media(stage):
    """Finding 3: the act's user links, in its media folder, to another production's private
    upload (readable by nginx's group) and to nginx's error log; on the old code nginx
    served both. Now nginx follows no link under the media and static folders."""
    peer = "/srv/backstage/two/acts/storefront/media/private.txt"
    assert as_user(stage, OTHER_USER, f"echo two-private > {peer}").returncode == 0
    media = f"{ROOT}/acts/storefront/media"
    planted = as_user(stage, USER, f"ln -sfn {peer} {media}/peer.txt && "
                                   f"ln -sfn /var/log/nginx/error.log {media}/log.txt && "
                                   f"echo mine > {media}/mine.txt")
    assert planted.returncode == 0, planted.stderr
    for name in ("peer.txt", "log.txt"):
        status, body = stage.page(f"/media/{name}")
        assert status in (403, 404) and "two-private" not in body, (name, status, body)
    assert stage.page("/media/mine.txt") == (200, "mine\n")


def closed_to_others() -> list[str]:
    """The paths the README's least-privilege table gives nothing to other local users."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| path | root |"):].split("\n\n", 1)[0]
    return re.findall(r"^ *\| `([^`]+)`[^|]*\|.*\| — \|$", table, re.MULTILINE)


def test_another_local_user_reads_nothing_of_the_production(stage):
    """Finding 4: any local user could read the history and access logs, connect to the
    Emperor's stats socket, read the acts' code and list an act's sockets' folder. The
    README's least-privilege table says who may read what; this tries each of its rows as a
    local user who is none of those (and as an act of another production)."""
    release = f"{ROOT}/acts/storefront/releases/{live_release(stage)}"
    connect = "python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])'"
    attempts = {
        "stage/": f"ls {ROOT}/stage",
        "wheelhouse/": f"ls {ROOT}/wheelhouse",
        "venues/": f"ls {ROOT}/venues",
        "trees/": f"ls {ROOT}/trees",
        "acts/<act>/releases/<id>/": f"cat {release}/manage.py || ls {release}/storefront",
        "acts/<act>/env/env-<id>": f"cat {ROOT}/acts/storefront/env/env-{live_release(stage)}",
        "acts/<act>/shared/": f"ls {ROOT}/acts/storefront/shared",
        "acts/<act>/media/": f"ls {ROOT}/acts/storefront/media",
        "data/": f"ls {ROOT}/data",
        "run/<act>/": f"ls {ROOT}/run/storefront",
        "run/<act>.stats/": f"ls {ROOT}/run/storefront.stats",
        "run/emperor-stats.sock": f"{connect} {ROOT}/run/emperor-stats.sock",
        "vassals/": f"ls {ROOT}/vassals",
        "log/": f"cat {ROOT}/log/nginx-shop.access.log || ls {ROOT}/log",
        "state/": f"cat {ROOT}/state/history.jsonl",
        "backups/": f"ls {ROOT}/backups",
    }
    assert sorted(closed_to_others()) == sorted(attempts)
    on_host(stage, "id -u stranger >/dev/null 2>&1 || useradd --no-create-home stranger")
    for who in ("stranger", OTHER_USER):
        for row, command in attempts.items():
            attempt = as_user(stage, who, command)
            assert attempt.returncode != 0 and "denied" in attempt.stderr, (who, row, attempt)
    # The act still reads its code; root still reads everything.
    assert as_user(stage, USER, f"cat {release}/manage.py >/dev/null").returncode == 0
    assert on_host(stage, f"cat {ROOT}/state/history.jsonl").stdout


def test_a_deploy_removes_secrets_a_deploy_cut_short_left(stage):
    """Finding 5: an upload killed mid-way left ``env/env-<id>.backstage-new`` (its secrets)
    for ever, and an env file whose release was never made outlived it. The next deploy
    (never a no-op after a deploy cut short: the live release is not the one it wanted)
    removes them, and the trees and releases left half made."""
    env_dir = f"{ROOT}/acts/storefront/env"
    leftovers = [f"{env_dir}/env-20200101T000000000Z-deadbeef.backstage-new",
                 f"{env_dir}/env-20200101T000000000Z-deadbeef",
                 f"{ROOT}/acts/storefront/releases/.incoming-20200101T000000000Z-deadbeef",
                 f"{ROOT}/trees/.incoming-{'d' * 64}-storefront"]
    on_host(stage, "umask 077; " + "; ".join(
        [f"echo DJANGO_SECRET_KEY=left > {path}" for path in leftovers[:2]]
        + [f"mkdir -p {path}" for path in leftovers[2:]]))
    with (stage.source / "greetings" / "views.py").open("a") as f:
        f.write("\n# another change\n")
    stage.cli("deploy-act", "storefront")
    left = on_host(stage, shlex.join(["ls", "-d", *leftovers]), check=False)
    assert left.stdout == "", left.stdout
    releases = on_host(stage, f"ls {ROOT}/acts/storefront/releases").stdout.split()
    env_files = on_host(stage, f"ls {env_dir}").stdout.split()
    assert f"env-{live_release(stage)}" in env_files
    assert all(name.removeprefix("env-") in releases for name in env_files), env_files


def test_an_act_cannot_take_the_data_folder_of_an_act_added_later(stage):
    """``data/`` is the production group's to write, so the storefront's user could make
    ``data/newcomer/`` before the newcomer act is first deployed, with a link in it where the
    newcomer's own sqlite file goes, and read or replace that act's data. The deploy moves such
    a folder aside (kept), and gives the act a folder of its own, 0700. The newcomer is a
    ``startproject`` naming no logical database: its own sqlite file is migrated there."""
    loot = f"{ROOT}/acts/storefront/shared/loot.sqlite3"
    planted = as_user(stage, USER, f"mkdir -m 0777 {ROOT}/data/newcomer && "
                                   f"ln -s {loot} {ROOT}/data/newcomer/db.sqlite3")
    assert planted.returncode == 0, planted.stderr
    project = stage.work / "newcomer"
    project.mkdir()
    subprocess.run([str(Path(sys.executable).parent / "django-admin"), "startproject",
                    "newcomer", str(project)], check=True)
    inventory = stage.inventory.with_name("lp-newcomer.toml")
    inventory.write_text('production = "lp"\n' + stage.inventory.read_text() + f"""
[acts.newcomer]
venue = "storefront"
source = "{project}"
settings = "newcomer.settings"
""")
    backstage("setup-stage", "--inventory", str(inventory), cwd=stage.work)
    backstage("deploy-act", "newcomer", "--inventory", str(inventory), cwd=stage.work)

    owner = on_host(stage, f"stat -c '%U %a %F' {ROOT}/data/newcomer").stdout.split(maxsplit=2)
    assert owner == ["bs-lp-newcomer", "700", "directory\n"]
    aside = on_host(stage, f"ls -d {ROOT}/data/.foreign-newcomer-*").stdout.split()
    assert len(aside) == 1
    assert on_host(stage, f"stat -c %U {aside[0]}").stdout.strip() == USER  # kept, not used
    database = f"{ROOT}/data/newcomer/db.sqlite3"
    assert on_host(stage, f"stat -c '%U %F' {database}").stdout.strip() == \
        "bs-lp-newcomer regular file"
    assert on_host(stage, f"test -e {loot}", check=False).returncode == 1
    count = ("import sqlite3; print(sqlite3.connect(" + repr(database) + ")"
             ".execute('select count(*) from django_migrations').fetchone()[0])")
    assert int(on_host(stage, shlex.join(["python3", "-c", count])).stdout) > 10
