"""One host of three down (issue 12): ``status`` and ``plan`` report the two reachable hosts
and give the down one a line of its own, exit 3, and print no traceback; the host's error is
said once. Then hosts that answer, but not as Backstage expects: one line each too."""

import json
import re

import pytest

from tests.support.deploying import make_stage

pytestmark = pytest.mark.fleet
HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """The example act deployed on three hosts, then h2 powered off."""
    stage = make_stage(tmp_path_factory.mktemp("unreachable"), "partial",
                       {h: 'roles = ["web"]' for h in HOSTS})
    try:
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        stage.fleet.kill("h2")
        yield stage
    finally:
        stage.fleet.stop()


def run(stage, *args):
    """The command's output, after checking what every such run must show: exit 3, no
    traceback, h2's error once (no paramiko log), and a last line counting it."""
    done = stage.cli(*args, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "cannot connect" in line]
    assert len(errors) == 1 and errors[0].startswith("h2  error h2: cannot connect: "), done.stderr
    assert "Connection refused" in errors[0]  # the proxy command's reason, not "banner"
    assert done.stderr.splitlines()[-1] == "backstage: error: 1 of 3 hosts unreachable: h2"
    return done


def test_status_shows_the_reachable_hosts_and_a_row_for_the_down_one(stage):
    rows = [line for line in run(stage, "status").stdout.splitlines()
            if re.match(r"│ h\d ", line)]
    assert [row.split()[1] for row in rows] == ["h1", "h2", "h3"]
    assert "running" in rows[0] and "running" in rows[2]
    assert "unreach" in rows[1]


def test_status_json_has_every_host_the_down_one_with_its_error(stage):
    status = json.loads(run(stage, "status", "--json").stdout)
    assert list(status) == list(HOSTS)
    for host in ("h1", "h3"):
        (sess,) = status[host]["storefront"]["sesses"]
        assert sess["master"] and sess["workers"]
    down = status["h2"]["storefront"]
    assert down["unreachable"] is True
    assert down["error"].startswith("h2: cannot connect: ")


@pytest.mark.parametrize("command", [["plan", "storefront"],
                                     ["deploy-act", "storefront", "--dry-run"]])
def test_plan_shows_the_reachable_hosts_and_one_line_for_the_down_one(stage, command):
    lines = run(stage, *command).stdout.splitlines()
    for host in ("h1", "h3"):
        assert any(line.startswith(f"{host}: storefront: no changes") for line in lines), lines
    down = [line for line in lines if line.startswith("h2")]
    assert len(down) == 1 and down[0].startswith("h2: storefront: unreachable: cannot connect: ")


def test_history_shows_the_reachable_hosts_entries(stage):
    entries = [json.loads(line) for line in run(stage, "history", "--json").stdout.splitlines()]
    deploys = {e["host"] for e in entries if e["event"] == "deploy"}
    assert deploys == {"h1", "h3"}


def test_a_change_says_what_was_done_on_the_reachable_hosts(stage):
    lines = run(stage, "restart", "storefront").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["h1", "h3"]
    assert all(line.endswith(" restart done") for line in lines), lines


# --- hosts that answer, but not as expected ------------------------------------------------

def test_a_shell_startup_file_that_prints_is_one_line(stage):
    bashrc = stage.fleet.host("h3").workdir / "root" / ".bashrc"
    bashrc.write_text('echo "Welcome to h3"\n')  # bash runs it for commands sshd starts
    try:
        done = stage.cli("status", "--hosts", "h3", check=False)
    finally:
        bashrc.unlink()
    assert done.returncode == 1, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "not JSON" in line]
    assert line.startswith("h3  error h3: step 'status': the host helper's answer is not JSON")
    assert line.endswith(": 'Welcome to h3'")


def test_a_history_line_cut_short_is_shown_as_unreadable(stage):
    history = "/srv/backstage/partial/state/history.jsonl"
    stage.fleet.run("h1", f"cp {history} {history}.saved && printf '{{\"time\": \"20' >> {history}")
    try:
        done = stage.cli("history", "--hosts", "h1", "--json", check=False)
    finally:
        stage.fleet.run("h1", f"mv {history}.saved {history}")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"host": "h1", "event": "unreadable", "line": '{"time": "20'} in entries
    assert any(e["event"] == "deploy" for e in entries)
