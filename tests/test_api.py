"""The Python API (backstage.shortcuts), for real: Django and uWSGI run, nothing is mocked.

Local tests need no root and use 127.0.0.1 only; each stops every Emperor it started (by the
venue's pidfile) and checks that no process of its venues is left. The same API against a
namespace host over SSH is tests/fleet/test_api.py.
"""

import errno
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backstage.venues.names import api_name, module_name, slug
from backstage.venues.ports import PORT_HIGH, PORT_LOW, preferred_port
from backstage.venues.scaffold import render_act

REPO = Path(__file__).resolve().parent.parent

# The snippet, verbatim; the tests swap '/tmp' for a temporary root.
SNIPPET = """\
from backstage.shortcuts import new_venue, new_act
venue = new_venue('MyVenue', '/tmp')   # creates /tmp/MyVenue and builds its virtualenv
act = new_act(venue, 'MyAct')          # creates MyVenue/acts/MyAct and launches it under uWSGI, in the venue's virtualenv
act.get_uwsgi_port()                   # the port it is bound to: browse http://localhost:PORT, no runserver
act.stop()
act.start()
"""
BAD_NAMES = ["../x", "a b", "a_b", "x" * 41, "", "1abc", "-a", "My.Venue", "a/b"]


# --- helpers ------------------------------------------------------------------------------------

def get(port: int, path: str = "/") -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; status 0 when nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Host": f"localhost:{port}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def refused(port: int) -> bool:
    with socket.socket() as conn:
        conn.settimeout(5)
        try:
            conn.connect(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.ECONNREFUSED
    return False


def processes_in(folder) -> list[int]:
    """Pids of processes working in ``folder`` or below (an act's uWSGI works in its folder)."""
    folder = os.path.realpath(folder)
    found = []
    for entry in os.listdir("/proc"):
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd") if entry.isdigit() else None
        except OSError:
            continue
        if cwd and (cwd == folder or cwd.startswith(folder + "/")):
            found.append(int(entry))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text()[:64]


def reap(root: Path) -> list[int]:
    """Stop every Emperor under ``root`` by its pidfile, then kill what is left working there;
    return the pids that had to be killed that way."""
    for pidfile in root.glob("**/run/emperor.pid"):
        try:
            os.kill(int(pidfile.read_text()), signal.SIGINT)
        except (ValueError, OSError):
            pass
    deadline = time.monotonic() + 20
    while processes_in(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_in(root)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.fixture(scope="module", autouse=True)
def state_home(tmp_path_factory):
    """This module's host-wide port registry (XDG_STATE_HOME), not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("state")
        mp.setenv("XDG_STATE_HOME", str(home))
        yield home


@pytest.fixture
def root(tmp_path):
    """A temporary root for venues; every Emperor started under it is stopped afterwards."""
    yield tmp_path
    assert reap(tmp_path) == [], "processes were left after the Emperors stopped"


@pytest.fixture(scope="module")
def shared(tmp_path_factory, state_home):
    """One venue with one running act, shared by the tests that only add to it."""
    from backstage.shortcuts import new_act, new_venue

    folder = tmp_path_factory.mktemp("shared")
    try:
        venue = new_venue("MyVenue", folder)
        act = new_act(venue, "MyAct")
        yield venue, act
    finally:
        assert reap(folder) == [], "processes were left after the Emperor stopped"


def run_snippet(lines: list[str], namespace: dict, root: Path, **replace) -> None:
    for line in lines:
        for old, new in {"'/tmp'": repr(str(root)), **replace}.items():
            line = line.replace(old, new)
        exec(line, namespace)  # noqa: S102  (the issue's snippet, run as written)


# --- pure parts ---------------------------------------------------------------------------------

def test_names_keep_case_and_map_to_one_lower_case_identifier():
    assert api_name("MyVenue") == "MyVenue"
    assert slug("MyAct") == "myact" and module_name("My-Act") == "my_act"
    for bad in BAD_NAMES:
        with pytest.raises(ValueError):
            api_name(bad)
    for shadowing in ("json", "Django", "site", "class"):
        with pytest.raises(ValueError, match="shadow"):
            module_name(shadowing)


def test_ports_are_deterministic_per_venue_and_act():
    port = preferred_port("/tmp/a/MyVenue", "myact")
    assert PORT_LOW <= port <= PORT_HIGH
    assert port == preferred_port("/tmp/a/MyVenue", "myact")
    assert len({preferred_port(f"/tmp/{v}/MyVenue", "myact") for v in "abcdefgh"}) > 1


def load_venueside():
    spec = importlib.util.spec_from_file_location(
        "venueside", REPO / "backstage" / "remote" / "venueside.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_allocation_records_ports_and_never_gives_one_twice(tmp_path, monkeypatch):
    """Two venues whose acts prefer the same port: the second gets the next one, even while
    the first act is stopped (the host's registry remembers it), and a bound port is skipped."""
    venueside = load_venueside()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def allocate(venue, act, preferred):
        (tmp_path / venue).mkdir(exist_ok=True)
        return venueside.allocate({
            "venue": str(tmp_path / venue), "act": act, "preferred": preferred,
            "ports": str(tmp_path / venue / "ports.json"), "lock": str(tmp_path / venue / "lock"),
            "low": PORT_LOW, "high": PORT_HIGH})

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        if not PORT_LOW <= taken <= PORT_HIGH - 3:
            taken = None
        preferred = taken or 25000
        first = allocate("one", "MyAct", preferred)["port"]
        assert first != taken
    assert allocate("one", "MyAct", preferred) == {"port": first, "new": False}
    second = allocate("two", "MyAct", preferred)["port"]
    assert second not in (first, taken)
    assert json.loads((tmp_path / "two" / "ports.json").read_text()) == {"MyAct": second}
    assert venueside.candidates(PORT_HIGH, PORT_LOW, PORT_HIGH)[:2] == [PORT_HIGH, PORT_LOW]


def test_scaffold_models_match_migrations_and_settings_read_the_environment(tmp_path):
    """The scaffolded project as deploy-act runs it: its migration is complete, and settings
    take databases, hosts, static and media roots and the secret key from the environment."""
    scaffold = render_act("shop")
    for relative, text in scaffold.files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1",
           "DJANGO_SECRET_KEY": "k" * 60,
           "BACKSTAGE_DATABASES": json.dumps({"shop": {"ENGINE": "django.db.backends.sqlite3",
                                                       "NAME": str(tmp_path / "x.sqlite3")}}),
           "BACKSTAGE_ALLOWED_HOSTS": "shop.example.test",
           "BACKSTAGE_STATIC_ROOT": str(tmp_path / "static-out"),
           "BACKSTAGE_MEDIA_ROOT": str(tmp_path / "media-out")}
    manage = [sys.executable, "manage.py"]
    done = subprocess.run([*manage, "makemigrations", "--check", "--dry-run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    show = ("from django.conf import settings as s; print(s.DATABASES['shop']['NAME'], "
            "s.ALLOWED_HOSTS, s.STATIC_ROOT, s.MEDIA_ROOT, s.DEBUG)")
    done = subprocess.run([*manage, "shell", "-c", show], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert done.stdout.splitlines()[-1].split() == [str(tmp_path / "x.sqlite3"), "['shop.example.test']",
                                   str(tmp_path / "static-out"), str(tmp_path / "media-out"),
                                   "False"], done.stderr


# --- local venues -------------------------------------------------------------------------------

def test_snippet_runs_verbatim_on_this_machine(root):
    namespace: dict = {}
    lines = SNIPPET.splitlines()
    run_snippet(lines[:4], namespace, root)
    venue, act = namespace["venue"], namespace["act"]
    port = act.get_uwsgi_port()
    assert (root / "MyVenue" / "venv" / "bin" / "uwsgi").exists()
    assert (root / "MyVenue" / "acts" / "MyAct" / "manage.py").is_file()
    status, body = get(port)
    assert status == 200 and "<h1>MyAct</h1>" in body and "venue MyVenue" in body
    assert get(port, "/static/myact/style.css")[0] == 200  # uWSGI serves collected static
    assert act.status()["state"] == "running"
    pids = act.status()["pids"]

    run_snippet(lines[4:5], namespace, root)  # act.stop()
    assert refused(port)
    assert processes_in(act.path) == [] and not any(pid_alive(p) for p in pids)
    assert act.status()["state"] == "stopped"

    run_snippet(lines[5:6], namespace, root)  # act.start()
    assert get(port)[0] == 200
    assert venue.acts["MyAct"].get_uwsgi_port() == port


def test_a_new_python_process_finds_the_same_port_and_the_act_running(shared):
    venue, act = shared
    code = ("from backstage.shortcuts import Venue; import json; "
            f"a = Venue({venue.path!r}).acts['MyAct']; "
            "print(json.dumps([a.get_uwsgi_port(), a.status()['state']]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [act.get_uwsgi_port(), "running"]
    assert get(act.get_uwsgi_port())[0] == 200


def test_acts_come_back_on_their_ports_after_the_emperor_goes(shared):
    """As after a reboot: the Emperor is gone, the venue's record brings every act back."""
    from backstage.shortcuts import Venue

    venue, act = shared
    venue.shutdown()
    assert venue.emperor_pid is None and refused(act.get_uwsgi_port())
    assert processes_in(act.path) == []
    assert act.status()["state"] == "down"
    again = Venue(venue.path)
    again.start_all()
    assert again.acts["MyAct"].get_uwsgi_port() == act.get_uwsgi_port()
    assert get(act.get_uwsgi_port())[0] == 200 and again.emperor_pid


def test_two_venues_with_acts_of_the_same_name_do_not_clash(shared, root):
    from backstage.shortcuts import new_act, new_venue

    one, first = shared
    two = new_venue("MyVenue", root)
    second = new_act(two, "MyAct")
    assert first.get_uwsgi_port() != second.get_uwsgi_port()
    assert one.paths.socket("MyAct") != two.paths.socket("MyAct")
    assert one.paths.vassal("MyAct") != two.paths.vassal("MyAct")
    assert one.emperor_pid != two.emperor_pid
    for act in (first, second):
        assert get(act.get_uwsgi_port())[0] == 200
    mine = set(processes_in(second.path))
    assert mine and not mine & set(processes_in(first.path))

    second.stop()
    assert refused(second.get_uwsgi_port()) and processes_in(second.path) == []
    assert get(first.get_uwsgi_port())[0] == 200 and first.status()["state"] == "running"
    second.restart()  # a stopped act restarts by starting
    assert get(second.get_uwsgi_port())[0] == 200


def test_names_are_checked_before_anything_is_made(shared, root):
    from backstage.shortcuts import Venue, VenueError, new_act, new_venue

    venue, act = shared
    for bad in BAD_NAMES:
        with pytest.raises(ValueError):
            new_venue(bad, root)
    assert list(root.iterdir()) == []
    before = sorted(os.listdir(Path(venue.path) / "acts")), venue.describe()["ports"]
    for bad in [*BAD_NAMES, "json", "myact", "MYACT"]:
        with pytest.raises(ValueError):
            new_act(venue, bad)
    assert (sorted(os.listdir(Path(venue.path) / "acts")), venue.describe()["ports"]) == before

    # An existing venue is opened, not rebuilt; an act that exists is only (re)started.
    record = (Path(venue.path) / "venue.json").read_text()
    assert new_venue("MyVenue", Path(venue.path).parent).acts["MyAct"].port == act.port
    assert (Path(venue.path) / "venue.json").read_text() == record
    assert new_act(venue, "MyAct").get_uwsgi_port() == act.get_uwsgi_port()

    (root / "stuff").mkdir()
    (root / "stuff" / "mine.txt").write_text("keep me")
    with pytest.raises(VenueError, match="not a venue"):
        new_venue("stuff", root)
    with pytest.raises(VenueError, match="not a venue"):
        Venue(root / "stuff")
    assert [p.name for p in (root / "stuff").iterdir()] == ["mine.txt"]


def test_uwsgi_failures_are_raised_with_the_acts_log(shared):
    from backstage.shortcuts import ActFailed, new_act

    venue, act = shared
    broken = new_act(venue, "Broken")
    assert get(broken.get_uwsgi_port())[0] == 200
    settings = Path(broken.path) / "broken" / "settings.py"
    settings.write_text(settings.read_text() + '\nraise RuntimeError("broken on purpose")\n')
    with pytest.raises(ActFailed) as failure:
        broken.restart()
    message = str(failure.value)
    assert "GAME OVER" in message and "RuntimeError: broken on purpose" in message
    assert broken.status()["state"] in ("stopped", "stopping")  # disabled, not respawned
    assert get(act.get_uwsgi_port())[0] == 200  # the venue's other act plays on
    settings.write_text(settings.read_text().replace('raise RuntimeError("broken on purpose")',
                                                     ""))
    broken.start()
    assert get(broken.get_uwsgi_port())[0] == 200
    assert "GET /" in broken.logs()
    broken.stop()

