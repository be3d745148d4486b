"""Day-two tasks on a fleet: ``manage``, ``exec``, ``logs`` and ``env`` against a deployed act.

Two hosts get the example act, with Django's auth app added to the copy deployed (mapped to
the ``users`` database) so that ``createsuperuser`` has something to create.
"""

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time

import pytest

from tests.support.deploying import make_stage, processes

pytestmark = pytest.mark.fleet

USER = "bs-days-storefront"
AUTH = """
INSTALLED_APPS += ["django.contrib.contenttypes", "django.contrib.auth"]
APP_DATABASES.update({"auth": "users", "contenttypes": "users"})
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    stage = make_stage(tmp_path_factory.mktemp("days"), "days",
                       {"h1": 'roles = ["web"]', "h2": 'roles = ["web"]'})
    with (stage.source / "storefront" / "settings.py").open("a") as settings:
        settings.write(AUTH)
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        yield stage
    finally:
        stage.fleet.stop()


def cli(stage, *args: str, command=(), stdin: str = "", check: bool = True):
    """The backstage program with ``stdin`` as its input (not a terminal); ``command``: the
    words after ``--``."""
    argv = [sys.executable, "-m", "backstage", *args, "--inventory", str(stage.inventory)]
    done = subprocess.run([*argv, "--", *command] if command else argv, cwd=stage.work,
                          input=stdin, text=True, capture_output=True, timeout=300, check=False)
    assert "Traceback (most recent call last)" not in done.stdout + done.stderr, done.stderr
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def manage(stage, *words, stdin: str = "", check: bool = True, hosts=()):
    return cli(stage, "manage", "storefront", *hosts, command=words, stdin=stdin, check=check)


# --- manage and exec ---------------------------------------------------------------------------

def test_manage_prints_djangos_migration_plan(stage):
    out = manage(stage, "migrate", "--plan", "--database", "users").stdout
    assert "Planned operations:" in out and "No planned migration operations." in out


def test_manage_shell_reads_a_row_written_through_the_site(stage):
    assert json.loads(stage.post("/api/greet", "name=Grace"))["people"] >= 1
    code = "from people.models import Person; print('found', Person.objects.filter(name='Grace').count())"
    assert "found 1" in manage(stage, "shell", "-c", code).stdout


def test_loaddata_from_stdin_loads_a_fixture(stage):
    fixture = json.dumps([{"model": "people.person", "pk": 9001,
                           "fields": {"name": "Fixture Fred", "created": "2026-01-01T00:00:00Z"}}])
    done = manage(stage, "loaddata", "--database", "users", "--format", "json", "-",
                  stdin=fixture)
    assert "Installed 1 object" in done.stdout + done.stderr
    code = "from people.models import Person; print(Person.objects.get(pk=9001).name)"
    assert manage(stage, "shell", "-c", code).stdout.splitlines()[-1] == "Fixture Fred"


def test_a_failing_check_exits_non_zero(stage):
    # The fleet speaks plain HTTP: `check --deploy` warns (no HSTS, no SSL redirect).
    done = manage(stage, "check", "--deploy", "--fail-level", "WARNING", check=False)
    assert done.returncode == 1
    assert "security.W004" in done.stderr or "security.W004" in done.stdout
    assert manage(stage, "check").returncode == 0


def test_exec_runs_as_the_act_user_in_its_environment_and_venue(stage):
    uid = stage.fleet.run("h1", ["id", "-u", USER]).stdout.strip()
    script = ("import os, sys; print(os.getuid(), os.getcwd(), sys.prefix, "
              "os.environ['BACKSTAGE_ACT'], 'DJANGO_SECRET_KEY' in os.environ)")
    out = cli(stage, "exec", "storefront", command=["python", "-c", script]).stdout.split()
    # Where the app runs: the project's root in the live release.
    assert out[0] == uid and out[1].startswith("/srv/backstage/days/acts/storefront/releases/")
    assert "/venues/storefront-" in out[2] and out[3:] == ["storefront", "True"]
    assert cli(stage, "exec", "storefront", command=["sh", "-c", "exit 7"],
               check=False).returncode == 7


def test_no_secret_in_the_process_table_while_manage_runs(stage):
    from tests.support.testbed import SECRET_KEY
    seen = []
    running = threading.Event()

    def sample():
        while not running.is_set():
            seen.extend(processes(stage, "h1", ""))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        manage(stage, "shell", "-c", "import time; time.sleep(3)")
    finally:
        running.set()
        sampler.join()
    assert any("manage.py shell" in line for line in seen)  # sampled while it ran
    assert not [line for line in seen if SECRET_KEY in line]


def test_default_host_is_the_first_and_all_hosts_runs_on_each(stage):
    done = cli(stage, "exec", "storefront", "--all-hosts", command=["hostname"])
    assert "--- h1" in done.stderr and "--- h2" in done.stderr
    assert len(done.stdout.split()) == 2
    only = cli(stage, "exec", "storefront", "--hosts", "h2", command=["hostname"]).stdout
    assert only.strip() == done.stdout.split()[1]
    assert cli(stage, "exec", "storefront", command=["hostname"]).stdout.strip() == \
        done.stdout.split()[0]


def test_manage_without_a_command_is_a_usage_error(stage):
    done = cli(stage, "manage", "storefront", check=False)
    assert done.returncode == 2 and "nothing to run" in done.stderr


def test_createsuperuser_under_a_pseudo_terminal(stage):
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "backstage", "manage", "storefront", "--inventory",
         str(stage.inventory), "--", "createsuperuser", "--database", "users"],
        cwd=stage.work, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    said = bytearray()

    def expect(text: bytes, answer: bytes):
        deadline = time.monotonic() + 60
        while text not in said and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                try:
                    said.extend(os.read(main, 4096))
                except OSError:
                    break
        assert text in said, said.decode(errors="replace")
        del said[:]
        os.write(main, answer)

    try:
        expect(b"Username", b"ada\r")
        expect(b"Email address", b"ada@example.test\r")
        expect(b"Password", b"correct horse battery\r")
        expect(b"Password (again)", b"correct horse battery\r")
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(main)
    code = "from django.contrib.auth.models import User; print(User.objects.get(username='ada').is_superuser)"
    assert manage(stage, "shell", "-c", code).stdout.splitlines()[-1] == "True"


# --- logs --------------------------------------------------------------------------------------

def test_logs_prefix_each_hosts_lines_and_grep_filters_them_on_the_host(stage):
    for host in ("h1", "h2"):
        assert stage.page(f"/?seen=first-{host}", host=host)[0] == 200
    out = cli(stage, "logs", "storefront", "--lines", "500").stdout.splitlines()
    for host in ("h1", "h2"):
        assert [line for line in out if line.startswith(f"{host} | ") and f"seen=first-{host}" in line]
    found = cli(stage, "logs", "storefront", "--grep", "seen=first-h2").stdout.splitlines()
    assert found and all(line.startswith("h2 | ") and "seen=first-h2" in line for line in found)
    document = json.loads(cli(stage, "logs", "storefront", "--grep", "seen=first-h1",
                              "--json").stdout)
    assert document["hosts"]["h2"] == {"lines": []}
    assert all("seen=first-h1" in line for line in document["hosts"]["h1"]["lines"])


def test_logs_sources_and_bad_options(stage):
    stage.page("/?seen=access", host="h1")
    access = cli(stage, "logs", "storefront", "--source", "access", "--hosts", "h1").stdout
    assert "seen=access" in access
    assert cli(stage, "logs", "storefront", "--source", "emperor").returncode == 0
    bad = cli(stage, "logs", "storefront", "--source", "kernel", check=False)
    assert bad.returncode == 2 and "--source: 'kernel' is not one of" in bad.stderr
    assert cli(stage, "logs", "storefront", "--lines", "0", check=False).returncode == 2


def test_logs_follow_shows_a_request_to_each_host_within_two_seconds(stage):
    process = subprocess.Popen(
        [sys.executable, "-m", "backstage", "logs", "storefront", "-f", "--lines", "1",
         "--inventory", str(stage.inventory)],
        cwd=stage.work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    seen: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: seen.extend((time.monotonic(), line)
                                                         for line in process.stdout))
    reader.start()

    def shown(text: str, host: str, since: float, within: float) -> bool:
        deadline = since + within
        while time.monotonic() < deadline:
            if any(line.startswith(f"{host} | ") and text in line for _, line in seen):
                return True
            time.sleep(0.02)
        return False

    try:
        for attempt in range(60):  # until both hosts' streams are open
            for host in ("h1", "h2"):
                stage.page(f"/?seen=warm-{attempt}", host=host)
            if all(shown(f"seen=warm-{attempt}", h, time.monotonic(), 0.5) for h in ("h1", "h2")):
                break
        for host in ("h1", "h2"):
            started = time.monotonic()
            stage.page(f"/?seen=now-{host}", host=host)
            assert shown(f"seen=now-{host}", host, started, 2.0), seen[-5:]
    finally:
        process.send_signal(2)  # Ctrl-C
        code = process.wait(timeout=15)
        reader.join()
    assert code == 130
    time.sleep(1)
    for host in ("h1", "h2"):  # hung up on: nothing left following on the hosts
        assert not processes(stage, host, "tail -q -n 1 -F")


# --- env ---------------------------------------------------------------------------------------

def test_env_masks_secret_values_and_flags_a_changed_key(stage):
    from tests.support.testbed import SECRET_KEY
    secrets = stage.work / "secrets.env"
    before = secrets.read_text()
    out = cli(stage, "env", "storefront").stdout
    assert "    DJANGO_SECRET_KEY=********" in out and SECRET_KEY not in out
    assert "    BACKSTAGE_PRODUCTION=days" in out and "h2: storefront@" in out
    assert not [line for line in out.splitlines() if line[2:4] in ("~ ", "+ ", "- ")]
    secrets.write_text(f"DJANGO_SECRET_KEY=rotated-{'r' * 50}\nAPI_TOKEN=token-{'t' * 20}\n")
    try:
        done = cli(stage, "env", "storefront", "--json")
    finally:
        secrets.write_text(before)
    assert "rotated-" not in done.stdout and SECRET_KEY not in done.stdout
    keys = {k["key"]: k for k in json.loads(done.stdout)["hosts"]["h1"]["keys"]}
    assert keys["DJANGO_SECRET_KEY"] == {"key": "DJANGO_SECRET_KEY", "state": "changed",
                                         "live": "********", "inventory": "********"}
    assert keys["API_TOKEN"]["state"] == "added"
    assert keys["BACKSTAGE_PRODUCTION"]["state"] == "same"


def test_a_terminal_on_stdin_alone_gets_no_pseudo_terminal(stage):
    """``manage ... dumpdata > file`` typed at a terminal: the file gets the command's output
    as written (no pseudo-terminal's CRLF, no stderr merged into it)."""
    main, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "backstage", "manage", "storefront", "--inventory",
             str(stage.inventory), "--", "shell", "-c",
             "import sys; print('tty', sys.stdin.isatty()); print('err', file=sys.stderr)"],
            cwd=stage.work, stdin=secondary, capture_output=True, timeout=120, check=False)
    finally:
        os.close(secondary)
        os.close(main)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"tty False\n") and b"err" not in done.stdout
