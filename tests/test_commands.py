"""The commands layer: the shell text Backstage sends, run for real with sh/bash in a temp dir."""

import contextlib
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backstage.artefacts import bundle
from backstage.commands import (
    HELPER_MISSING,
    HOSTSIDE_SOURCE,
    gig,
    history,
    hostside,
    hostside_if_installed,
    hostside_inline,
    hostside_path,
    install_hostside,
    release,
    sess,
    stage,
    venue,
)
from backstage.commands.shell import STEP_MARKER, Script, argv, failed_step, q, step_output
from backstage.commands.stage import Services
from backstage.model import Layout

# The interpreter itself, not the project's venv wrapper: it starts twice as fast (stdlib only).
PY = os.path.realpath(sys.executable)
NASTY = [
    "", " ", "plain", "two words", "it's", '"double"', "$(touch CANARY)", "`touch CANARY`",
    "$HOME", "${HOME}", "a\\b", "line1\nline2", "\ttab", "-n", "--", "*", "?", "~", "!x",
    "a;b", "a|b", "a&b", "a>b", "'", "''", "%s %d %%", "é ü ☃", "\r", "x" * 1000,
]


def sh(text: str, stdin: bytes = b"", cwd=None, env=None, timeout=30):
    return subprocess.run(["sh", "-c", text], input=stdin, capture_output=True, cwd=cwd,
                          env=env, timeout=timeout, check=False)


def run(script: Script, stdin: bytes = b"", **kw):
    return sh(script.text(), stdin, **kw)


def user_layout(tmp_path: Path) -> Layout:
    return Layout("shop", "user", str(tmp_path / "host"), 8080)


@pytest.fixture
def short_tmp():
    """A short temp dir: a unix socket path must fit in 108 bytes (sun_path)."""
    path = Path(tempfile.mkdtemp(prefix="bs", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def made(layout: Layout) -> Layout:
    """A stage's directories, with the host helper installed as the first probe does."""
    for directory in layout.directories:
        Path(directory).mkdir(parents=True, exist_ok=True)
    Path(hostside_path(layout)).write_text(HOSTSIDE_SOURCE)
    return layout


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


# --- quoting --------------------------------------------------------------------------------

def test_q_and_argv_round_trip_through_a_real_shell(tmp_path):
    result = sh("printf '%s\\0' " + argv(*NASTY), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\0")[:-1] == NASTY
    assert not (tmp_path / "CANARY").exists()
    assert q("") == "''"
    assert q(5) == "5"
    assert q("safe-word_1.txt") == "safe-word_1.txt"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.text(st.characters(blacklist_characters="\0",
                                              blacklist_categories=("Cs",))), max_size=8))
def test_argv_any_words(tmp_path, words):
    assert shlex.split(argv(*words)) == words
    result = sh("printf '%s\\0' " + argv(*words, "END"), cwd=tmp_path)
    assert result.stdout.decode().split("\0")[:-2] == words
    assert not any(tmp_path.iterdir())


# --- Script ---------------------------------------------------------------------------------

def test_script_is_one_bash_command_that_stops_at_the_first_failure(tmp_path):
    script = Script()
    assert not script
    script.run("touch", str(tmp_path / "before"))
    assert script
    script.raw("false | true")  # pipefail: this fails
    script.run("touch", str(tmp_path / "after"))
    assert script.text().startswith("bash -c ")
    result = run(script)
    assert result.returncode != 0
    assert (tmp_path / "before").exists()
    assert not (tmp_path / "after").exists()


def test_script_unset_variable_is_an_error(tmp_path):
    result = run(Script().raw('echo "$BACKSTAGE_SURELY_UNSET"').run("touch", str(tmp_path / "x")))
    assert result.returncode != 0
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("content", [
    "",
    "no newline at end",
    "ini = 1\n",
    ("'single' \"double\" $(touch CANARY) `touch CANARY` ${HOME} $HOME \\ \\n %s %d %% -n\n"
     "second line\n\n\ttrailing blank lines\n\n"),
    "-e starts with a dash\n",
    "unicode é ☃ 🎭\n",
    "\r\nwindows\r\n",
])
def test_write_file_writes_exactly_the_content(tmp_path, content):
    path = tmp_path / "dir with space" / "it's a \"file\".conf"
    path.parent.mkdir()
    result = run(Script().write_file(str(path), content), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == content.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not (tmp_path / "CANARY").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_write_file_mode_and_replaces_existing(tmp_path):
    path = tmp_path / "env"
    path.write_text("old\n")
    path.chmod(0o644)
    result = run(Script().write_file(str(path), "SECRET=1\n", mode="600"))
    assert result.returncode == 0, result.stderr
    assert path.read_text() == "SECRET=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_link_replaces_symlink_even_one_to_a_directory(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "releases" / name).mkdir(parents=True)
    current = tmp_path / "current"
    current.symlink_to("releases/a")
    # A stale temp link from an interrupted run, pointing at a directory, is replaced too.
    Path(f"{current}.backstage-new").symlink_to("releases/a")
    result = run(Script().link("releases/b", str(current)))
    assert result.returncode == 0, result.stderr
    assert os.readlink(current) == "releases/b"
    assert sorted(p.name for p in (tmp_path / "releases" / "a").iterdir()) == []  # nothing inside
    assert not Path(f"{current}.backstage-new").is_symlink()


def test_link_flips_atomically(tmp_path):
    """A reader never finds the link missing while it is flipped back and forth."""
    (tmp_path / "a.sock").touch()
    (tmp_path / "b.sock").touch()
    stable = tmp_path / "act.sock"
    stable.symlink_to("a.sock")
    script = Script()
    for _ in range(12):
        script.link("b.sock", str(stable)).link("a.sock", str(stable))
    seen, missing = set(), []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                seen.add(os.readlink(stable))
            except OSError as exc:
                missing.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run(script)
    finally:
        done.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert missing == []
    assert seen <= {"a.sock", "b.sock"} and "a.sock" in seen
    assert os.readlink(stable) == "a.sock"


def test_mkdirs_and_remove(tmp_path):
    paths = [str(tmp_path / "a b" / "c"), str(tmp_path / "-d")]
    assert Script().mkdirs([]).lines == Script().lines
    assert Script().remove().lines == Script().lines
    assert run(Script().mkdirs(paths)).returncode == 0
    assert all(Path(p).is_dir() for p in paths)
    (tmp_path / "a b" / "c" / "f").write_text("x")
    result = run(Script().remove(str(tmp_path / "a b"), str(tmp_path / "-d"), str(tmp_path / "no")))
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_step_names_the_last_step_of_a_failing_script(tmp_path):
    script = (Script().step("one").run("echo", "out").raw("echo a warning of one >&2")
              .step("two words 'quoted'")
              .raw("echo some error >&2").raw("exit 3").step("three"))
    result = run(script)
    assert result.returncode == 3
    stderr = result.stderr.decode()
    assert failed_step(stderr) == "two words 'quoted'"
    assert step_output(stderr) == "some error"
    assert result.stdout.decode() == "out\n"


def test_failed_step_edge_cases():
    assert failed_step("") is None
    assert failed_step("error: nothing announced\n") is None
    assert failed_step(f"noise {STEP_MARKER}not at line start\n") is None
    assert failed_step(f"{STEP_MARKER}a\nx\n{STEP_MARKER}b\n") == "b"


# --- the host-side helper ----------------------------------------------------------------------

def test_hostside_probe_runs_with_sh_and_prints_json(tmp_path):
    (tmp_path / "file").write_bytes(b"content\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b").touch()
    (tmp_path / "dir" / "a").touch()
    (tmp_path / "link").symlink_to("dir/a")
    (tmp_path / "live.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "dead.pid").write_text("4194303\n")
    t = str(tmp_path)
    spec = {
        "files": [f"{t}/file", f"{t}/missing"],
        "links": [f"{t}/link", f"{t}/file"],
        "listings": [f"{t}/dir", f"{t}/missing"],
        "pidfiles": [f"{t}/live.pid", f"{t}/dead.pid", f"{t}/missing.pid"],
        "exists": [f"{t}/dir", f"{t}/missing"],
        "globs": [f"{t}/dir/*"],
    }
    result = sh(hostside_inline("python3", "probe", spec))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"user", "python", "somaxconn", "files", "links", "listings", "pids"} <= set(data)
    assert data["files"] == {f"{t}/file": hashlib.sha256(b"content\n").hexdigest(),
                             f"{t}/missing": None}
    assert data["links"] == {f"{t}/link": "dir/a", f"{t}/file": None}
    assert data["listings"] == {f"{t}/dir": ["a", "b"], f"{t}/missing": None}
    assert data["pids"] == {f"{t}/live.pid": os.getpid(), f"{t}/dead.pid": None,
                            f"{t}/missing.pid": None}
    assert data["exists"] == {f"{t}/dir": True, f"{t}/missing": False}
    assert list(data["globs"][f"{t}/dir/*"]) == [f"{t}/dir/a", f"{t}/dir/b"]
    assert data["somaxconn"] == int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert data["uid"] == os.getuid()
    assert data["python"]["version"].count(".") == 2 and data["python"]["tag"].startswith("cpython")


def test_hostside_inline_sends_the_source_whole():
    command = hostside_inline("python3", "probe", {})
    words = shlex.split(command)
    assert words[:2] == ["python3", "-c"]
    assert words[2] == HOSTSIDE_SOURCE
    assert words[3:] == ["probe", "{}"]


def test_installed_hostside_is_called_by_a_path_naming_its_hash(tmp_path):
    layout = user_layout(tmp_path)
    command = hostside(layout, "python3", "probe", {})
    assert shlex.split(command) == ["python3", hostside_path(layout), "probe", "{}"]
    digest = hashlib.sha256(HOSTSIDE_SOURCE.encode()).hexdigest()[:16]
    assert hostside_path(layout) == f"{layout.stage}/hostside-{digest}.py"
    assert len(hostside_if_installed(layout, "python3", "probe", {})) < 500


def test_hostside_is_installed_once_and_old_versions_go(tmp_path):
    layout = user_layout(tmp_path)
    spec = {"exists": [layout.stage]}
    missing = sh(hostside_if_installed(layout, PY, "probe", spec))
    assert missing.returncode == HELPER_MISSING and not Path(layout.stage).exists()
    Path(layout.stage).mkdir(parents=True)
    stale = Path(layout.stage, "hostside-0123456789abcdef.py")
    stale.write_text("raise SystemExit('a stale helper ran')\n")
    installed = sh(install_hostside(layout, PY, "probe", spec), HOSTSIDE_SOURCE.encode())
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["exists"] == {layout.stage: True}
    assert Path(hostside_path(layout)).read_text() == HOSTSIDE_SOURCE
    assert sorted(p.name for p in Path(layout.stage).iterdir()) == \
        [Path(hostside_path(layout)).name]
    again = sh(hostside_if_installed(layout, PY, "probe", spec))
    assert again.returncode == 0 and json.loads(again.stdout)["exists"] == {layout.stage: True}


class FakeVassal:
    """A unix socket that answers one uwsgi-protocol request per connection, as a vassal would."""

    def __init__(self, path: Path, status: int = 200):
        self.path, self.status, self.requests = str(path), status, []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(4, socket.MSG_WAITALL)
                _, size, _ = struct.unpack("<BHB", head)
                body = conn.recv(size, socket.MSG_WAITALL)
                env, at = {}, 0
                while at < len(body):
                    (klen,) = struct.unpack_from("<H", body, at)
                    key = body[at + 2:at + 2 + klen].decode()
                    at += 2 + klen
                    (vlen,) = struct.unpack_from("<H", body, at)
                    env[key] = body[at + 2:at + 2 + vlen].decode()
                    at += 2 + vlen
                self.requests.append(env)
                conn.sendall(f"HTTP/1.1 {self.status} X\r\nContent-Type: text/plain\r\n\r\n"
                             "hello from the vassal".encode())

    def close(self):
        self.server.close()


HEALTH = {"host": "shop.example.test", "path": "/healthz?full=1", "status": 200, "timeout": 2,
          "retries": 2, "interval": 0.05}


def test_hostside_health_speaks_uwsgi(tmp_path):
    vassal = FakeVassal(tmp_path / "v.sock")
    try:
        result = sh(hostside_inline(PY, "health", {"socket": vassal.path, **HEALTH}))
    finally:
        vassal.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "status": 200, "attempts": 1}
    env = vassal.requests[0]
    assert env["PATH_INFO"] == "/healthz"
    assert env["QUERY_STRING"] == "full=1"
    assert env["HTTP_HOST"] == "shop.example.test"
    assert env["REQUEST_METHOD"] == "GET"


def test_hostside_health_wrong_status_fails(tmp_path):
    vassal = FakeVassal(tmp_path / "v.sock", status=500)
    try:
        result = sh(hostside_inline(PY, "health", {"socket": vassal.path, **HEALTH}))
    finally:
        vassal.close()
    assert result.returncode == 1
    # The reason is reported (on stderr, or as {"ok": false, "error": ...} on stdout).
    assert b"/healthz?full=1 answered 500 (expected 200): hello from the vassal" in (
        result.stdout + result.stderr)
    assert len(vassal.requests) == 2  # every retry was made


@pytest.mark.parametrize("answer, ok", [(404, True), (301, True), (500, False), (503, False)])
def test_hostside_health_without_a_path_takes_any_answer_below_500(tmp_path, answer, ok):
    vassal = FakeVassal(tmp_path / "v.sock", status=answer)
    try:
        result = sh(hostside_inline(PY, "health", {"socket": vassal.path, **HEALTH,
                                                   "path": "/", "status": None}))
    finally:
        vassal.close()
    assert (result.returncode == 0) == ok
    if not ok:
        assert f"/ answered {answer} (expected below 500)".encode() in result.stdout + result.stderr


def test_hostside_health_of_a_tls_gigs_act_is_sent_as_https(tmp_path):
    """A project that redirects to HTTPS (SECURE_SSL_REDIRECT) answers it, as nginx passes a
    request of a TLS gig."""
    vassal = FakeVassal(tmp_path / "v.sock")
    try:
        result = sh(hostside_inline(PY, "health", {"socket": vassal.path, **HEALTH,
                                                   "https": True}))
    finally:
        vassal.close()
    assert result.returncode == 0, result.stderr
    env = vassal.requests[0]
    assert (env["HTTPS"], env["HTTP_X_FORWARDED_PROTO"], env["REQUEST_SCHEME"]) == (
        "on", "https", "https")


SMOKE = {"host": "shop.example.test", "timeout": 2,
         "record": {"event": "smoke", "act": "storefront", "release": "r2", "via": "socket"}}


def smoke_answers(vassal, checks, history=None):
    spec = {"socket": vassal.path, **SMOKE, "checks": checks}
    if history:
        spec["history"] = str(history)
    return sh(hostside_inline(PY, "smoke", spec))


def test_hostside_smoke_sends_each_request_once_and_checks_status_and_body(tmp_path):
    vassal = FakeVassal(tmp_path / "v.sock")
    history = tmp_path / "history.jsonl"
    try:
        result = smoke_answers(vassal, [
            {"path": "/", "status": 200, "contains": "from the vassal", "method": "GET"},
            {"path": "/about?x=1", "status": 200, "contains": None, "method": "HEAD"}], history)
    finally:
        vassal.close()
    assert result.returncode == 0, result.stderr
    assert [(e["REQUEST_METHOD"], e["PATH_INFO"], e["QUERY_STRING"], e["HTTP_HOST"])
            for e in vassal.requests] == [("GET", "/", "", "shop.example.test"),
                                          ("HEAD", "/about", "x=1", "shop.example.test")]
    entry = json.loads(history.read_text())
    assert next(iter(entry)) == "time" and entry["time"].endswith("Z")
    assert entry["ok"] is True and entry["release"] == "r2" and entry["via"] == "socket"
    assert [r["status"] for r in entry["results"]] == [200, 200]


@pytest.mark.parametrize("status, check, reason", [
    (500, {"path": "/", "status": 200, "contains": None, "method": "GET"},
     b"GET / answered 500 (expected 200): hello from the vassal"),
    (200, {"path": "/", "status": 200, "contains": "Welcome", "method": "GET"},
     b"GET / answered 200 without 'Welcome'"),
])
def test_hostside_smoke_fails_on_a_wrong_status_or_a_missing_text(tmp_path, status, check,
                                                                   reason):
    vassal = FakeVassal(tmp_path / "v.sock", status=status)
    history = tmp_path / "history.jsonl"
    try:
        result = smoke_answers(vassal, [check], history)
    finally:
        vassal.close()
    assert result.returncode == 1
    assert reason in result.stderr and b"smoke check via " in result.stderr
    assert len(vassal.requests) == 1  # no retries: the health check waited already
    entry = json.loads(history.read_text())
    assert entry["ok"] is False and reason.decode() in entry["error"]


def test_smoke_check_failure_removes_the_release_and_marks_it_bad(short_tmp):
    layout = made(Layout("shop", "user", str(short_tmp), 8080))
    ini = Path(layout.vassal("storefront", R2))
    ini.write_text("x\n")
    Path(layout.act_dir("storefront")).mkdir(parents=True)
    vassal = FakeVassal(Path(layout.socket("storefront", R2)), status=500)
    checks = [{"path": "/", "status": 200, "contains": None, "method": "GET"}]
    try:
        result = run(sess.smoke_check(Script(), layout, PY, "storefront", R2,
                                      {**SMOKE, "checks": checks}))
    finally:
        vassal.close()
    assert result.returncode == 1
    assert failed_step(result.stderr.decode()) == "smoke"
    assert not ini.exists()
    assert Path(layout.bad_list("storefront")).read_text() == f"{R2}\n"
    assert json.loads(Path(layout.history).read_text())["ok"] is False


# --- sesses ---------------------------------------------------------------------------------

R0, R1, R2 = "20231231T000000Z-00000000", "20240101T000000Z-11111111", "20240102T000000Z-22222222"


def test_start_vassal_switch_and_retire(tmp_path):
    layout = made(user_layout(tmp_path))
    Path(layout.vassal("storefront", R1)).write_text("old\n")
    Path(layout.vassal("storefront", R0) + sess.STOPPED_SUFFIX).write_text("older, stopped\n")
    Path(layout.releases("storefront"), R2).mkdir(parents=True)
    script = Script()
    sess.start_vassal(script, layout, "storefront", R2, "[uwsgi]\nmodule = x:app\n")
    sess.switch(script, layout, "storefront", R2)
    sess.retire(script, layout, "storefront", [R0, R1, "20200101T000000Z-00000000"], grace=0)
    assert sess.retire(Script(), layout, "storefront", []).lines == Script().lines
    result = run(script)
    assert result.returncode == 0, result.stderr
    assert Path(layout.vassal("storefront", R2)).read_text() == "[uwsgi]\nmodule = x:app\n"
    assert os.readlink(layout.stable_socket("storefront")) == f"storefront@{R2}.sock"
    assert os.readlink(layout.current("storefront")) == f"releases/{R2}"
    assert Path(layout.current("storefront")).resolve() == Path(layout.release("storefront", R2))
    assert Path(layout.good_list("storefront")).read_text() == f"{R2}\n"
    # Old vassals (enabled or stopped) are disabled in the background, kept for a rollback;
    # missing ones are fine.
    deadline = time.monotonic() + 5
    while f"storefront@{R1}.ini" in os.listdir(layout.vassals) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(os.listdir(layout.vassals)) == sorted([
        f"storefront@{R2}.ini",
        f"storefront@{R1}.ini{sess.RETIRED_SUFFIX}",
        f"storefront@{R0}.ini{sess.RETIRED_SUFFIX}",
    ])
    assert Path(layout.vassal("storefront", R1) + sess.RETIRED_SUFFIX).read_text() == "old\n"
    stderr = result.stderr.decode()
    assert [line for line in stderr.splitlines() if line.startswith(STEP_MARKER)] == [
        "::step start", "::step switch", "::step retire"]


def test_a_rollback_right_after_a_deploy_waits_for_its_pending_retire(tmp_path):
    """A deploy retires the old vassal in the background a second after its switch; a
    rollback to that release inside that second must not see it retired under its feet (it
    was, between the rollback's revive and its switch: the act then served from nothing)."""
    layout = made(user_layout(tmp_path))
    for rel in (R1, R2):
        Path(layout.releases("storefront"), rel).mkdir(parents=True, exist_ok=True)
    Path(layout.vassal("storefront", R1)).write_text("old\n")
    deploy = run(sess.switch(sess.start_vassal(Script(), layout, "storefront", R2, "new\n"),
                             layout, "storefront", R2))
    assert deploy.returncode == 0, deploy.stderr
    retire = run(sess.retire(Script(), layout, "storefront", [R1], grace=0.5))
    assert retire.returncode == 0, retire.stderr
    rollback = sess.revive(Script(), layout, "storefront", R1)
    rollback.raw("sleep 1")  # the rollback's health check, while the retire comes due
    sess.switch(rollback, layout, "storefront", R1)
    result = run(rollback)
    assert result.returncode == 0, result.stderr
    time.sleep(0.5)
    assert f"storefront@{R1}.ini" in os.listdir(layout.vassals)
    assert os.readlink(layout.stable_socket("storefront")) == f"storefront@{R1}.sock"


def test_revive_and_delete_releases(tmp_path):
    layout = made(user_layout(tmp_path))
    for rel in (R0, R1):
        Path(layout.release("storefront", rel)).mkdir(parents=True)
        Path(layout.vassal("storefront", rel) + sess.RETIRED_SUFFIX).write_text(rel)
    script = sess.revive(Script(), layout, "storefront", R1)
    sess.delete_releases(script, layout, "storefront", [R0])
    assert sess.delete_releases(Script(), layout, "storefront", []).lines == Script().lines
    result = run(script)
    assert result.returncode == 0, result.stderr
    assert os.listdir(layout.vassals) == [f"storefront@{R1}.ini"]
    assert os.listdir(layout.releases("storefront")) == [R1]


def test_stop_and_start_rename_the_vassal_file(tmp_path):
    layout = made(user_layout(tmp_path))
    ini = Path(layout.vassal("storefront", R1))
    ini.write_text("x\n")
    assert run(sess.stop(Script(), layout, "python3", "storefront", R1)).returncode == 0
    assert not ini.exists() and Path(f"{ini}.stopped").read_text() == "x\n"
    # idempotent
    assert run(sess.stop(Script(), layout, "python3", "storefront", R1)).returncode == 0
    assert run(sess.start(Script(), layout, "storefront", R1)).returncode == 0
    assert ini.read_text() == "x\n" and not Path(f"{ini}.stopped").exists()


def test_restart_bumps_mtime_by_whole_seconds(tmp_path):
    layout = made(user_layout(tmp_path))
    ini = Path(layout.vassal("storefront", R1))
    ini.write_text("x\n")
    before = int(ini.stat().st_mtime)
    script = sess.restart(Script(), layout, "storefront", R1)
    sess.restart(script, layout, "storefront", R1)  # twice within the same second
    result = run(script)
    assert result.returncode == 0, result.stderr
    assert int(ini.stat().st_mtime) >= before + 2


def test_health_check_failure_marks_the_release_bad(tmp_path):
    layout = made(user_layout(tmp_path))
    ini = Path(layout.vassal("storefront", R2))
    ini.write_text("x\n")
    Path(layout.act_dir("storefront")).mkdir(parents=True)
    Path(layout.act_log("storefront")).write_text("".join(f"log {i}\n" for i in range(50)))
    check = {**HEALTH, "retries": 1, "timeout": 0.2}
    script = sess.health_check(Script(), layout, PY, "storefront", R2, check)
    script.run("touch", str(tmp_path / "not-reached"))
    result = run(script)
    assert result.returncode == 1
    assert not ini.exists()
    assert Path(layout.bad_list("storefront")).read_text() == f"{R2}\n"
    stderr = result.stderr.decode()
    assert failed_step(stderr) == "health"
    assert "log 49" in stderr and "log 19" not in stderr  # the last 30 lines only
    assert not (tmp_path / "not-reached").exists()


def test_a_failed_health_checks_log_tail_leaves_out_request_and_daemon_lines(tmp_path):
    """Under load the act's log is mostly request lines: the tail shown on failure leaves
    them out (and the attached servers' daemon lines), so the vassal's startup error shows.
    Adding the daemon lines to the pattern once made it match nothing (grep's basic syntax
    read its "|" literally): "Address already in use" fell out of the tail."""
    layout = made(user_layout(tmp_path))
    Path(layout.vassal("storefront", R2)).write_text("x\n")
    Path(layout.act_dir("storefront")).mkdir(parents=True)
    requests = "".join(f"[pid: 346|app: 0|req: {i}/{i}] 127.0.0.1 () GET / => 200\n"
                       for i in range(100))
    Path(layout.act_log("storefront")).write_text(
        "bind(): Address already in use [core/socket.c line 769]\n" + requests
        + "[uwsgi-daemons] spawning the server\n" + requests)
    check = {**HEALTH, "retries": 1, "timeout": 0.2}
    stderr = run(sess.health_check(Script(), layout, PY, "storefront", R2, check)).stderr.decode()
    assert "Address already in use" in stderr
    assert "GET / => 200" not in stderr and "[uwsgi-daemons]" not in stderr


def test_health_check_passes_through_the_release_socket(short_tmp):
    layout = made(Layout("shop", "user", str(short_tmp), 8080))
    Path(layout.vassal("storefront", R2)).write_text("x\n")
    vassal = FakeVassal(Path(layout.socket("storefront", R2)))
    try:
        result = run(sess.health_check(Script(), layout, PY, "storefront", R2, HEALTH))
    finally:
        vassal.close()
    assert result.returncode == 0, result.stderr
    assert Path(layout.vassal("storefront", R2)).exists()
    assert not Path(layout.bad_list("storefront")).exists()


def test_switch_script_for_an_act_with_many_gigs_fits_one_argument(tmp_path):
    layout = user_layout(tmp_path)
    script = Script()
    sess.start_vassal(script, layout, "storefront", R2, "[uwsgi]\n" + "x = 1\n" * 50)
    sess.health_check(script, layout, "python3", "storefront", R2, HEALTH)
    sess.switch(script, layout, "storefront", R2)
    for _ in range(12):  # what plan_deploy adds per gig of the act (12 gigs)
        sess.health_via_nginx(script, layout, "python3", {"port": 8080, **HEALTH})
    text = script.text()
    assert len(text.encode()) < 128 * 1024
    sh(text.replace("set -euo pipefail", "exit 0", 1))  # OSError E2BIG when too long


def test_one_argument_limit_is_real():
    """The limit the test above is about: sh -c refuses a 128 KiB argument here."""
    with pytest.raises(OSError) as info:
        sh(":" + " " * (128 * 1024))
    assert info.value.errno == 7  # E2BIG


# --- history ----------------------------------------------------------------------------------

def test_history_append_writes_one_json_line_per_record(tmp_path):
    layout = made(user_layout(tmp_path))
    records = [
        {"event": "deploy", "by": "o'brien \"the\" deployer", "note": "line1\nline2 $(touch CANARY)",
         "previous": None, "n": 3, "uni": "☃"},
        {"event": "book-gig", "gig": "shop", "backslash": "a\\b\\n"},
    ]
    script = Script()
    for record in records:
        history.append(script, layout, record)
    assert run(script, cwd=tmp_path).returncode == 0
    assert run(history.append(Script(), layout, {"event": "third"}), cwd=tmp_path).returncode == 0
    lines = [json.loads(line) for line in Path(layout.history).read_text().splitlines()]
    # Each line is stamped with the host's clock when it is written, in order.
    stamps = [line.pop("time") for line in lines]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t) for t in stamps)
    assert stamps == sorted(stamps)
    assert lines == [*records, {"event": "third"}]
    assert not (tmp_path / "CANARY").exists()


def test_history_is_read_by_a_bash_script_which_the_sudo_rule_allows(tmp_path):
    layout = made(user_layout(tmp_path))
    command = history.read(layout, 2)
    # become = "sudo" prefixes "sudo -n --": the README's rule allows bash, never tail.
    assert command.startswith("bash -c ")
    assert sh(command, b"").stdout == b""  # no history yet: nothing, and no error
    history.append(script := Script(), layout, {"event": "a"})
    for event in ("b", "c"):
        history.append(script, layout, {"event": event})
    assert run(script, cwd=tmp_path).returncode == 0
    read = [json.loads(line)["event"] for line in sh(command, b"").stdout.splitlines()]
    assert read == ["b", "c"]


# --- releases ---------------------------------------------------------------------------------

def small_source(root: Path) -> Path:
    source = root / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "manage.py").write_text(
        "import json, os, sys\n"
        "out = os.environ['MANAGE_LOG']\n"
        "with open(out, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
        "        'path0': sys.path[:3], 'env': {k: v for k, v in os.environ.items()\n"
        "        if k.startswith(('E_', 'DJANGO_', 'BACKSTAGE_', 'PYTHONPATH'))}}) + '\\n')\n"
        "failing = 'fail-here' in sys.argv or sys.argv[1:2] == [os.environ.get('E_FAIL')]\n"
        "sys.exit(int(os.environ.get('E_EXIT', '0')) if failing else 0)\n"
    )
    (source / "pkg" / "__init__.py").write_text("")
    return source


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Manifests packed by these tests go to a cache of their own."""
    monkeypatch.setattr(bundle, "cache_dir", lambda: tmp_path / "cache")


def unpack(layout: Layout, packed, env: bytes, upload=None, release_id=None):
    upload = upload or packed.upload_for(set())
    script = release.unpack_release(Script(), layout, PY, "storefront",
                                    release_id or packed.release, len(env), upload)
    return run(script, stdin=env + upload.data)


def tree_files(root: Path) -> dict[str, bytes | str]:
    """Relative path -> bytes (files) or target (links), directories aside."""
    return {str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


def test_unpack_release_reads_env_then_tarball_from_stdin(tmp_path):
    layout = made(user_layout(tmp_path))
    packed = bundle.pack(small_source(tmp_path))
    env = "A=1\nQUOTED='x y' \"z\" $HOME\nUNI=☃\n".encode()
    result = unpack(layout, packed, env)
    assert result.returncode == 0, result.stderr
    final = Path(layout.release("storefront", packed.release))
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*")) == [
        "manage.py", "pkg", "pkg/__init__.py"]
    env_file = Path(layout.env_file("storefront", packed.release))
    assert env_file.read_bytes() == env
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert sorted(os.listdir(layout.releases("storefront"))) == [packed.release]
    assert os.listdir(layout.env_dir("storefront")) == [f"env-{packed.release}"]
    assert os.listdir(layout.shared("storefront")) == os.listdir(layout.media("storefront")) == []
    assert os.listdir(layout.trees) == [packed.digest]
    tree = Path(layout.tree(packed.digest))
    assert (final / "manage.py").stat().st_ino == (tree / "manage.py").stat().st_ino
    # The same release again (a retried deploy) replaces it cleanly.
    again = unpack(layout, packed, env)
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(layout.releases("storefront"))) == [packed.release]


def test_unpack_release_empty_env(tmp_path):
    layout = made(user_layout(tmp_path))
    packed = bundle.pack(small_source(tmp_path))
    result = unpack(layout, packed, b"")
    assert result.returncode == 0, result.stderr
    assert Path(layout.env_file("storefront", packed.release)).read_bytes() == b""


def test_a_release_of_a_tree_the_host_has_reads_only_its_env(tmp_path):
    layout = made(user_layout(tmp_path))
    packed = bundle.pack(small_source(tmp_path))
    assert unpack(layout, packed, b"A=1\n").returncode == 0
    present = packed.upload_for({packed.digest})
    assert present.present and present.data == b""
    result = unpack(layout, packed, b"B=2\n", present, release_id="second")
    assert result.returncode == 0, result.stderr
    assert tree_files(Path(layout.release("storefront", "second"))) == tree_files(
        Path(layout.tree(packed.digest)))
    assert Path(layout.env_file("storefront", "second")).read_bytes() == b"B=2\n"


def test_a_delta_turns_the_base_tree_into_the_new_one_without_touching_the_base(tmp_path):
    layout = made(user_layout(tmp_path))
    source = small_source(tmp_path)
    (source / "gone").mkdir()
    (source / "gone" / "old.py").write_text("old\n")
    (source / "kind").write_text("a file that becomes a folder\n")
    (source / "pkg" / "link.py").symlink_to("__init__.py")
    base = bundle.pack(source)
    assert unpack(layout, base, b"").returncode == 0
    base_tree = tree_files(Path(layout.tree(base.digest)))

    shutil.rmtree(source / "gone")
    (source / "kind").unlink()
    (source / "kind").mkdir()
    (source / "kind" / "inner.py").write_text("inner\n")
    (source / "pkg" / "__init__.py").write_text("changed = True\n")
    (source / "pkg" / "link.py").unlink()
    (source / "pkg" / "link.py").symlink_to("../manage.py")
    (source / "manage.py").chmod(0o755)
    new = bundle.pack(source)
    upload = new.upload_for({base.digest})
    assert upload.base == base.digest
    assert set(upload.removed) == {"gone/old.py", "kind"}
    result = unpack(layout, new, b"", upload)
    assert result.returncode == 0, result.stderr

    made_tree = Path(layout.tree(new.digest))
    assert tree_files(made_tree) == tree_files(source)
    assert not (made_tree / "gone").exists()
    assert os.access(made_tree / "manage.py", os.X_OK)
    assert tree_files(Path(layout.tree(base.digest))) == base_tree
    assert not os.access(Path(layout.tree(base.digest), "manage.py"), os.X_OK)


def test_a_delta_on_a_base_changed_on_the_host_fails_and_drops_the_base(tmp_path):
    layout = made(user_layout(tmp_path))
    source = small_source(tmp_path)
    base = bundle.pack(source)
    assert unpack(layout, base, b"").returncode == 0
    Path(layout.tree(base.digest), "pkg", "__init__.py").write_text("edited on the host\n")
    (source / "manage.py").write_text("print('new')\n")
    new = bundle.pack(source)
    result = unpack(layout, new, b"", new.upload_for({base.digest}))
    assert result.returncode != 0
    assert failed_step(result.stderr.decode()) == "verify"
    assert f"not {new.digest}" in result.stderr.decode()
    assert sorted(os.listdir(layout.trees)) == []
    assert os.listdir(layout.releases("storefront")) == [base.release]


def fake_django(source: Path) -> Path:
    """A stand-in for Django, found on the release's import path: what prepare_release's one
    Python process (backstage/remote/managesteps.py) calls, logged like small_source's
    manage.py."""
    fake = source / "django" / "core" / "management"
    fake.mkdir(parents=True)
    (source / "django" / "__init__.py").write_text("def setup():\n    pass\n")
    (source / "django" / "core" / "__init__.py").write_text("")
    (fake / "base.py").write_text("class CommandError(Exception):\n    pass\n")
    (fake / "__init__.py").write_text(
        "import json, os, sys\n"
        "def get_commands():\n"
        "    return {'check': 'core', 'collectstatic': 'staticfiles', 'migrate': 'core'}\n"
        "def call_command(name, **options):\n"
        "    with open(os.environ['MANAGE_LOG'], 'a') as f:\n"
        "        f.write(json.dumps({'argv': [name, options], 'path0': sys.path[:1]}) + '\\n')\n"
        "    if options.get('database') == 'fail-here' or name == os.environ.get('E_FAIL'):\n"
        "        sys.exit(int(os.environ.get('E_EXIT', '0')))\n"
    )
    (source / "django" / "apps.py").write_text(
        "class Apps:\n    def is_installed(self, name):\n        return True\n"
        "apps = Apps()\n")
    # Every database has a migration to apply (the skip is tested with real Django, in
    # tests/test_managesteps.py).
    migrations = source / "django" / "db" / "migrations"
    migrations.mkdir(parents=True)
    (source / "django" / "db" / "__init__.py").write_text(
        "class Connections(dict):\n    def __missing__(self, name):\n        return name\n"
        "connections = Connections()\n")
    (migrations / "__init__.py").write_text("")
    (migrations / "executor.py").write_text(
        "class Graph:\n    def leaf_nodes(self):\n        return []\n"
        "class Loader:\n    graph = Graph()\n"
        "class MigrationExecutor:\n    loader = Loader()\n"
        "    def __init__(self, connection):\n        pass\n"
        "    def migration_plan(self, targets):\n        return ['one to apply']\n")
    return source


def staged_release(tmp_path: Path):
    """A user-layout host with one release unpacked and a 'venue' whose python is ours."""
    layout = made(user_layout(tmp_path))
    packed = bundle.pack(fake_django(small_source(tmp_path)))
    env = (b"E_PLAIN=1\nE_SPACES=a b  c \nE_DOLLAR=$HOME $(touch CANARY)\n"
           b"E_QUOTES='q' \"d\"\nE_BACKSLASH=a\\b\\n\nE_EQUALS=x=y\nE_LAST=no newline")
    assert unpack(layout, packed, env).returncode == 0
    venue_dir = layout.venue_dir("shop", "abc")
    Path(venue_dir, "bin").mkdir(parents=True)
    Path(venue_dir, "bin", "python").symlink_to(PY)
    return layout, packed.release, venue_dir


def manage_of(layout: Layout, rel: str, venue_dir: str) -> release.Manage:
    """How the example act's manage.py runs in a release, without its settings overlay."""
    return release.Manage(venue_dir, "manage.py", {
        "DJANGO_SETTINGS_MODULE": "storefront.settings", "BACKSTAGE_ACT": "storefront",
        "BACKSTAGE_RELEASE": rel, "BACKSTAGE_STATIC_ROOT": layout.static("storefront", rel)},
        [layout.release("storefront", rel)], layout.release("storefront", rel))


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_manage_function_runs_like_the_vassal(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    script.raw(release.manage_function(layout, "storefront", rel,
                                       manage_of(layout, rel, venue_dir)))
    script.raw("manage " + argv("arg one", "$(touch CANARY)", "--flag"))
    result = run(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (call,) = read_log(log)
    assert call["argv"] == ["arg one", "$(touch CANARY)", "--flag"]
    assert call["cwd"] == layout.release("storefront", rel)
    assert call["env"] == {
        "E_PLAIN": "1",
        "E_SPACES": "a b  c ",
        "E_DOLLAR": "$HOME $(touch CANARY)",
        "E_QUOTES": "'q' \"d\"",
        "E_BACKSLASH": "a\\b\\n",
        "E_EQUALS": "x=y",
        "E_LAST": "no newline",
        "DJANGO_SETTINGS_MODULE": "storefront.settings",
        "BACKSTAGE_ACT": "storefront",
        "BACKSTAGE_RELEASE": rel,
        "BACKSTAGE_STATIC_ROOT": layout.static("storefront", rel),
        "PYTHONPATH": layout.release("storefront", rel),
    }
    assert layout.release("storefront", rel) in call["path0"]
    assert not any(tmp_path.rglob("CANARY"))


def test_prepare_release_runs_check_collectstatic_then_migrate_under_the_acts_aliases(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {"users": "users", "greetings": "default"})
    result = run(script)
    assert result.returncode == 0, result.stderr
    calls = read_log(log)
    assert [c["argv"] for c in calls] == [
        ["check", {"deploy": True, "fail_level": "ERROR"}],
        ["collectstatic", {"interactive": False, "clear": True, "verbosity": 0}],
        ["migrate", {"interactive": False, "database": "users"}],
        ["migrate", {"interactive": False, "database": "default"}],
    ]
    assert calls[0]["path0"] == [layout.release("storefront", rel)]  # manage.py's folder first
    assert [line for line in result.stderr.decode().splitlines() if line.startswith("::step ")] \
        == ["::step check", "::step collectstatic", "::step migrate users",
            "::step migrate greetings"]


def test_a_release_failing_collectstatic_has_not_migrated(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {"users": "users"})
    Path(layout.env_file("storefront", rel)).write_text("E_EXIT=1\nE_FAIL=collectstatic\n")
    result = run(script)
    assert result.returncode != 0
    assert failed_step(result.stderr.decode()) == "collectstatic"
    assert [c["argv"][0] for c in read_log(log)] == ["check", "collectstatic"]  # no migrate


def test_an_act_without_static_files_skips_collectstatic(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {"users": "users"}, static=False)
    assert run(script).returncode == 0
    assert [c["argv"][0] for c in read_log(log)] == ["check", "migrate"]


def test_prepare_release_failure_names_the_step(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {"users": "users", "fail-here": "fail-here"})
    Path(layout.env_file("storefront", rel)).write_text("E_EXIT=4\n")
    result = run(script)
    assert result.returncode != 0
    assert failed_step(result.stderr.decode()) == "migrate fail-here"
    assert [c["argv"][1].get("database") for c in read_log(log)] == [
        None, None, "users", "fail-here"]


def test_prepare_release_failure_marks_the_release_bad(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    script = Script().raw(f"export MANAGE_LOG={q(tmp_path / 'log')}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {"fail-here": "fail-here"})
    script.run("touch", str(tmp_path / "not-reached"))
    Path(layout.env_file("storefront", rel)).write_text("E_EXIT=4\n")
    assert run(script).returncode != 0
    assert Path(layout.bad_list("storefront")).read_text() == f"{rel}\n"  # never rolled back to
    assert not (tmp_path / "not-reached").exists()


def test_manage_does_not_run_without_its_env_file(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    log = tmp_path / "manage.log"
    script = Script().raw(f"export MANAGE_LOG={q(log)}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {})
    Path(layout.env_file("storefront", rel)).unlink()
    result = run(script)
    assert result.returncode != 0
    assert not log.exists()  # manage.py never ran


def test_prepare_release_success_does_not_mark_bad(tmp_path):
    layout, rel, venue_dir = staged_release(tmp_path)
    script = Script().raw(f"export MANAGE_LOG={q(tmp_path / 'log')}")
    release.prepare_release(script, layout, "storefront", rel, manage_of(layout, rel, venue_dir),
                            {})
    assert run(script).returncode == 0
    assert not Path(layout.bad_list("storefront")).exists()


# --- venues -----------------------------------------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# Stands in for 'python -m venv TARGET': makes TARGET/bin/pip, which records its arguments.
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 9
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'EOF'
#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/../pip-args"
exit "$(cat "$(dirname "$0")/../../pip-exit" 2>/dev/null || echo 0)"
EOF
chmod +x "$3/bin/pip"
"""


FAKE_UV = """#!/bin/sh
# Stands in for uv: 'uv venv ... TARGET' makes TARGET/bin/python; 'uv pip ...' records its
# arguments in the venv its --python names.
printf '%s\\n' "$@" > "$(dirname "$0")/last-args"
if [ "$1" = venv ]; then for a; do target="$a"; done; mkdir -p "$target/bin"
  touch "$target/bin/python"; exit 0; fi
while [ "$1" != --python ]; do shift; done
cp "$(dirname "$0")/last-args" "$(dirname "$2")/../uv-args"
"""
# A PATH without uv, whatever the machine running the tests has.
NO_UV = {"PATH": "/usr/bin:/bin"}


def wheels_tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_build_venue_builds_beside_then_switches_link(tmp_path):
    layout = made(user_layout(tmp_path))
    python = write_exe(tmp_path / "fake" / "python", FAKE_PYTHON)
    target = Path(layout.venue_dir("shop", "d1"))
    (target / "stale").mkdir(parents=True)  # an interrupted earlier build
    stdin = wheels_tar({"requirements-d1.txt": b"django\n", "Django-5.0-py3-none-any.whl": b"w"})
    result = run(venue.build_venue(Script(), layout, "shop", "d1", str(python)), stdin=stdin,
                 env=NO_UV)
    assert result.returncode == 0, result.stderr
    assert not (target / "stale").exists()
    assert (target / venue.COMPLETE_MARKER).exists()
    assert os.readlink(layout.venue_link("shop")) == "shop-d1"
    assert (target / "pip-args").read_text().splitlines() == [
        "install", *stage.PIP_QUIET, "--no-index", "--find-links", layout.wheelhouse,
        "--require-hashes", "-r", venue.requirements_file(layout, "d1")]
    assert Path(venue.requirements_file(layout, "d1")).read_bytes() == b"django\n"


def test_build_venue_failure_keeps_the_old_venue(tmp_path):
    layout = made(user_layout(tmp_path))
    python = write_exe(tmp_path / "fake" / "python", FAKE_PYTHON)
    Path(layout.venue_link("shop")).symlink_to("shop-old")
    Path(layout.root, "venues", "pip-exit").write_text("1\n")
    result = run(venue.build_venue(Script(), layout, "shop", "d2", str(python)),
                 stdin=wheels_tar({"requirements-d2.txt": b"x\n"}), env=NO_UV)
    assert result.returncode == 1
    assert failed_step(result.stderr.decode()) == "venue"
    assert not Path(layout.venue_dir("shop", "d2"), venue.COMPLETE_MARKER).exists()
    assert os.readlink(layout.venue_link("shop")) == "shop-old"


def test_build_venue_uses_uv_when_on_the_path(tmp_path):
    layout = made(user_layout(tmp_path))
    python = write_exe(tmp_path / "fake" / "python", "#!/bin/sh\nexit 9\n")  # never run
    fakebin = tmp_path / "fakebin"
    write_exe(fakebin / "uv", FAKE_UV)
    target = layout.venue_dir("shop", "d3")
    result = run(venue.build_venue(Script(), layout, "shop", "d3", str(python)),
                 stdin=wheels_tar({"requirements-d3.txt": b"django\n"}),
                 env={"PATH": f"{fakebin}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert Path(target, venue.COMPLETE_MARKER).exists()
    assert os.readlink(layout.venue_link("shop")) == "shop-d3"
    assert Path(target, "uv-args").read_text().splitlines() == [
        "pip", "install", *venue.UV_QUIET, "--link-mode", "copy", "--python",
        f"{target}/bin/python", "--no-index", "--find-links", layout.wheelhouse,
        "--require-hashes", "-r", venue.requirements_file(layout, "d3")]


# --- the stage --------------------------------------------------------------------------------

def test_make_directories_user_layout(tmp_path):
    layout = user_layout(tmp_path)
    assert run(stage.make_directories(Script(), layout)).returncode == 0
    assert all(Path(d).is_dir() for d in layout.directories)
    assert Path(layout.nginx_dir, "temp").is_dir()


def test_pid_alive_and_wait_for(tmp_path):
    (tmp_path / "live.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "dead.pid").write_text("4194303\n")
    (tmp_path / "empty.pid").write_text("")
    for name, alive in [("live", True), ("dead", False), ("empty", False), ("missing", False)]:
        condition = stage.pid_alive(str(tmp_path / f"{name}.pid"))
        result = sh(f"if {condition}; then echo yes; else echo no; fi")
        assert result.stdout.decode() == ("yes\n" if alive else "no\n"), name
    started = time.monotonic()
    result = run(stage.wait_for(Script(), "[ -e /nonexistent/x ]", "never came: it's gone", 1))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "never came: it's gone"
    assert time.monotonic() - started < 5
    result = run(stage.wait_for(Script(), "true", "unused").run("echo", "after"))
    assert result.returncode == 0 and result.stdout == b"after\n"


FAKE_UWSGI = """#!/bin/sh
# Stands in for 'uwsgi --ini EMPEROR_INI', a daemon: it leaves a process whose command line
# ends with '--ini EMPEROR_INI' (how Backstage finds the Emperor), and writes its pidfile.
[ "$1" = "--ini" ] || exit 9
# Debian's Python itself: a wrapper script in between would take the SIGINT.
/usr/bin/python3 -c 'import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
time.sleep(30)' --ini "$2" </dev/null >/dev/null 2>&1 &
echo $! > "$PIDFILE"
echo started >> "$PIDFILE.log"
"""


def gone(pid: int, timeout: float = 10) -> bool:
    """Whether a process exited (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


def test_own_changes_files_through_a_descriptor_never_a_link(tmp_path):
    """The host helper's ``own`` gives an act its sqlite files in a folder the act can write:
    a link there (to a file of root's) or a file with another name is left alone."""
    target, link, shared = tmp_path / "root-file", tmp_path / "db.sqlite3", tmp_path / "other"
    target.write_text("root's\n")
    target.chmod(0o644)
    link.symlink_to(target)
    mine, linked = tmp_path / "mine.sqlite3", tmp_path / "linked.sqlite3"
    mine.write_text("db\n")
    mine.chmod(0o666)
    linked.write_text("db\n")
    os.link(linked, shared)
    spec = {"paths": [str(link), str(mine), str(linked), str(tmp_path / "missing")],
            "user": "nobody", "group": "nogroup"}
    result = sh(hostside_inline("python3", "own", spec))
    assert result.returncode == 0, result.stderr
    nobody = pwd.getpwnam("nobody").pw_uid
    assert (target.stat().st_uid, stat.S_IMODE(target.stat().st_mode)) == (os.getuid(), 0o644)
    assert (mine.stat().st_uid, stat.S_IMODE(mine.stat().st_mode)) == (nobody, 0o660)
    assert linked.stat().st_uid == os.getuid()


def test_probe_finds_processes_by_the_end_of_their_command_line(tmp_path):
    ini = str(tmp_path / "emperor.ini")
    process = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(30)",
                                "--ini", ini])
    try:
        deadline = time.monotonic() + 5
        while True:
            spec = {"processes": {"emperor": ["--ini", ini], "none": ["--ini", ini + "x"]}}
            data = json.loads(sh(hostside_inline("python3", "probe", spec)).stdout)
            if data["processes"]["emperor"] or time.monotonic() > deadline:
                break
        assert data["processes"] == {"emperor": [process.pid], "none": []}
    finally:
        process.kill()
        process.wait()


def test_start_emperor_daemon_starts_once_and_restarts(tmp_path):
    layout = made(user_layout(tmp_path))
    write_exe(Path(layout.uwsgi), FAKE_UWSGI)
    pidfile, log = Path(layout.emperor_pidfile), Path(layout.emperor_pidfile + ".log")
    env = {**os.environ, "PIDFILE": str(pidfile)}
    started = []
    try:
        result = run(stage.start_emperor_daemon(Script(), layout, restart=False), env=env)
        assert result.returncode == 0, result.stderr
        started.append(int(pidfile.read_text()))
        # Already running: not started again, whatever its pidfile says (stale or forged).
        pidfile.write_text("999999\n")
        result = run(stage.start_emperor_daemon(Script(), layout, restart=False), env=env)
        assert result.returncode == 0, result.stderr
        assert log.read_text() == "started\n"
        # Restart: the old one is stopped with SIGINT (uWSGI's "stop"), then a new one started.
        result = run(stage.start_emperor_daemon(Script(), layout, restart=True), env=env)
        assert result.returncode == 0, result.stderr
        started.append(int(pidfile.read_text()))
        assert log.read_text() == "started\nstarted\n"
        assert started[0] != started[1] and gone(started[0]) and not gone(started[1], 0.2)
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_start_emperor_daemon_fails_when_it_never_comes_up(tmp_path):
    layout = made(user_layout(tmp_path))
    # Starts nothing; says why in its log, as uWSGI does.
    write_exe(Path(layout.uwsgi), f"#!/bin/sh\necho 'bind(): Address in use' >> {layout.log}/emperor.log\n")
    script = stage.start_emperor_daemon(Script(), layout, restart=False)
    quick = f"$(seq {stage.EMPEROR_START_TENTHS})"
    script.lines = [line.replace(quick, "$(seq 1)") for line in script.lines]
    result = run(script)
    assert result.returncode == 1
    assert "the Emperor did not start" in result.stderr.decode()
    assert "bind(): Address in use" in result.stderr.decode()  # the log's end, shown
    assert failed_step(result.stderr.decode()) == "emperor"


def test_nginx_command_per_layout(tmp_path):
    user = user_layout(tmp_path)
    system = Layout("shop", "system", "/srv/backstage", 80)
    services = Services(nginx="/usr/sbin/nginx")
    assert shlex.split(stage.nginx_command(system, services, "-t")) == ["/usr/sbin/nginx", "-t"]
    assert shlex.split(stage.nginx_command(user, services, "-s", "reload")) == [
        "/usr/sbin/nginx", "-p", user.nginx_dir + "/", "-c", user.nginx_conf,
        "-e", f"{user.log}/nginx-error.log", "-s", "reload"]
    assert Services(systemd=True).systemd_manages(system)
    assert not Services(systemd=True).systemd_manages(user)
    assert not Services(systemd=False).systemd_manages(system)


# --- gigs -------------------------------------------------------------------------------------

FAKE_NGINX = """#!/bin/sh
# Stands in for nginx: '-t' fails when the file 'refuse' sits next to it; other calls are logged.
here="$(dirname "$0")"
for arg in "$@"; do
  if [ "$arg" = "-t" ]; then [ ! -e "$here/refuse" ]; exit $?; fi
done
echo "$@" >> "$here/calls"
"""


def gig_setup(tmp_path):
    layout = made(user_layout(tmp_path))
    nginx = write_exe(tmp_path / "fake" / "nginx", FAKE_NGINX)
    kept = Path(layout.gig_conf("kept"))
    kept.write_text("kept: old\n")
    gone = Path(layout.gig_conf("gone"))
    gone.write_text("gone: old\n")
    fresh = Path(layout.gig_conf("fresh"))
    files = {str(kept): "kept: new\n", str(fresh): "fresh: new\n"}
    return layout, Services(nginx=str(nginx)), nginx, kept, gone, fresh, files


def test_install_gigs_writes_tests_and_reloads(tmp_path):
    layout, services, nginx, kept, gone, fresh, files = gig_setup(tmp_path)
    result = run(gig.install_gigs(Script(), layout, files, [str(gone)], services))
    assert result.returncode == 0, result.stderr
    assert kept.read_text() == "kept: new\n"
    assert fresh.read_text() == "fresh: new\n"
    assert not gone.exists()
    assert sorted(os.listdir(layout.nginx_sites)) == sorted([kept.name, fresh.name])
    assert (nginx.parent / "calls").read_text().split()[-2:] == ["-s", "reload"]


def test_install_gigs_refused_puts_everything_back(tmp_path):
    layout, services, nginx, kept, gone, fresh, files = gig_setup(tmp_path)
    (nginx.parent / "refuse").touch()
    result = run(gig.install_gigs(Script(), layout, files, [str(gone)], services))
    assert result.returncode == 1
    assert "previous one is kept" in result.stderr.decode()
    assert failed_step(result.stderr.decode()) == "gig"
    assert kept.read_text() == "kept: old\n"
    assert gone.read_text() == "gone: old\n"
    assert not fresh.exists()
    assert sorted(os.listdir(layout.nginx_sites)) == sorted([kept.name, gone.name])
    assert not (nginx.parent / "calls").exists()  # never reloaded


def test_install_nothing_is_an_empty_script(tmp_path):
    layout = user_layout(tmp_path)
    assert not gig.install_gigs(Script(), layout, {}, [], Services())


def test_reload_nginx_system_layout_with_systemd():
    system = Layout("shop", "system", "/srv/backstage", 80)
    assert gig.reload_nginx(system, Services(systemd=True)) == "systemctl reload nginx"
    assert gig.reload_nginx(system, Services(nginx="/usr/sbin/nginx")) == "/usr/sbin/nginx -s reload"
