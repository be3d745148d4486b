"""Fault injection on a real fleet host (issue 8): one fault per test, during a deploy under
light load. Each asserts that the previous release keeps serving with no failed request, that
nothing is lost (data, media, env, history), that the error names the step and the exit is
non-zero, and that the next deploy succeeds.

Where a fault rules one of these out, the test says so and asserts what does hold: a killed
Emperor takes its vassals down, and so does a host going down (no request fails before the
fault; after setup-stage the live release serves again); a deploy SIGKILLed after its switch
leaves the new release live; SIGKILL leaves the lock, which the next deploy takes over (its
holder is provably gone), then finishing or redoing what was cut short.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from backstage.model import release_of_link
from tests.support.deploying import EXAMPLE, REPO, Load, interruptible, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "faults"
ROOT = f"/srv/backstage/{PRODUCTION}"
ACT = f"{ROOT}/acts/storefront"
HOME = "greetings/templates/greetings/home.html"
URLS = "storefront/urls.py"
SETTINGS = "storefront/settings.py"
VIEWS = "greetings/views.py"
MEDIA = "kept.txt"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """One host with the example act deployed, an env value, a media file and a greeting."""
    stage = make_stage(tmp_path_factory.mktemp("faults"), PRODUCTION, {"h1": 'roles = ["web"]'})
    try:
        text = stage.inventory.read_text()
        text = text.replace('health = { path = "/healthz" }\n',
                            'health = { path = "/healthz" }\nenv = { FAULTS_MARK = "kept" }\n')
        stage.inventory.write_text(text + 'media = "/media/"\n')
        stage.pristine = stage.inventory.read_text()
        stage.cli("setup-stage")
        stage.cli("deploy-act", "storefront")
        assert '"greetings": 1' in stage.post("/api/greet", "name=Ada")
        stage.fleet.run("h1", f"printf 'media survives\\n' > {ACT}/media/{MEDIA}")
        yield stage
    finally:
        stage.fleet.stop()


@dataclass
class Snapshot:
    """What must survive a failed deploy: the live release and everything outside it."""

    release: str
    data: tuple[str, ...]
    media: str
    env: str
    history: str


def live_release(stage) -> str:
    out = stage.fleet.run("h1", f"readlink {ROOT}/run/storefront.sock; readlink {ACT}/current")
    socket_link, current = out.stdout.split()
    release = release_of_link(socket_link)
    assert current == f"releases/{release}", "the stable socket and current disagree"
    return release


def locks_held(stage) -> list[str]:
    """The locks on h1 (of acts and databases), as folders ``state/locks/<kind>/<name>``."""
    return stage.fleet.run("h1", f"ls -d {ROOT}/state/locks/*/*/", check=False).stdout.split()


def snapshot(stage) -> Snapshot:
    release = live_release(stage)
    status, page = stage.page("/")
    assert status == 200 and f"release: {release}" in page, page
    data = re.search(r'id="people">(\d+)<.*id="greetings">(\d+)<.*id="latest">([^<]*)<', page,
                     re.DOTALL).groups()
    media_status, media = stage.page(f"/media/{MEDIA}")
    assert media_status == 200, media
    env = stage.fleet.run("h1", f"cat {ACT}/env/env-{release}").stdout
    assert "FAULTS_MARK=kept" in env
    history = stage.fleet.run("h1", f"cat {ROOT}/state/history.jsonl").stdout
    return Snapshot(release, data, media, hashlib.sha256(env.encode()).hexdigest(), history)


@dataclass
class Live:
    """A deployed act under light load, with what it served before the fault."""

    stage: object
    before: Snapshot
    load: Load
    result: dict | None = None

    def served_all(self) -> None:
        """Stop the load (once): every request it made must have had a 2xx answer."""
        if self.result is None:
            self.result = self.load.finish()
        assert self.result["requests"] > 0
        assert self.result["socket_errors"] == 0 and self.result["non_2xx"] == 0, self.result


@pytest.fixture
def live(stage):
    """The act as its last good deploy left it, its source and inventory pristine, under load."""
    restore(stage)
    live = Live(stage, snapshot(stage), Load(stage, connections=2))
    yield live
    if live.result is None:
        live.load.finish()


def restore(stage) -> None:
    """Undo a test's faults on the workstation: source, inventory, templates."""
    shutil.rmtree(stage.source)
    shutil.copytree(EXAMPLE, stage.source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    stage.inventory.write_text(stage.pristine)
    shutil.rmtree(stage.work / "templates", ignore_errors=True)


def assert_nothing_lost(live: Live, release: str | None = None) -> None:
    """0 failed requests; the previous release (or ``release``) serves the same data, media
    and env; the history only grew."""
    live.served_all()
    after = snapshot(live.stage)
    assert after.release == (release or live.before.release)
    assert after.data == live.before.data
    assert after.media == live.before.media
    assert after.env == live.before.env
    assert after.history.startswith(live.before.history)


def failed_deploy(live: Live, step: str) -> str:
    """Deploy with the fault in place: exit 1, an error line naming the host and the step, and
    a host that never switched. Returns the program's stderr."""
    done = live.stage.cli("deploy-act", "storefront", "--json", check=False)
    assert done.returncode == 1, done.stderr
    assert re.search(rf"h1: step '{step}' failed", done.stderr), done.stderr
    outcome = json.loads(done.stdout)["hosts"]["h1"]
    assert outcome["result"] == "failed", outcome
    assert outcome["release_after"] == live.before.release, outcome
    return done.stderr


def next_deploy_succeeds(stage, label: str) -> None:
    """Without the fault, a deploy (of a fresh heading) goes live."""
    restore(stage)
    path = stage.source / HOME
    path.write_text(re.sub(r"<h1>.*?</h1>", f"<h1>{label}</h1>", path.read_text()))
    stage.cli("deploy-act", "storefront")
    status, body = stage.page("/")
    assert status == 200 and f"<h1>{label}</h1>" in body, body


def edit(stage, relative: str, old: str, new: str) -> None:
    path = stage.source / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))


def test_import_error(live):
    edit(live.stage, URLS, "from greetings import views",
         "import no_such_module  # noqa\nfrom greetings import views")
    assert "No module named 'no_such_module'" in failed_deploy(live, "check")
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After an import error")


FAILING_MIGRATION = """
from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [
        migrations.AddField("greeting", "mood", models.CharField(max_length=10, default="")),
        migrations.RunPython(fail, migrations.RunPython.noop),  # reversible: not refused
    ]
"""


def test_failing_migration(live):
    (live.stage.source / "greetings" / "migrations" / "0002_fail.py").write_text(FAILING_MIGRATION)
    assert "this migration fails on purpose" in failed_deploy(live, "migrate greetings")
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a failing migration")


def test_an_act_without_staticfiles_deploys_and_says_collectstatic_was_skipped(live):
    """Without staticfiles, Django has no collectstatic (an API-only service): the deploy
    skips it, says so in its step list, and serves."""
    edit(live.stage, SETTINGS, '    "django.contrib.staticfiles",\n', "")
    done = live.stage.cli("deploy-act", "storefront")
    assert "h1  collectstatic: skipped (no django.contrib.staticfiles)" in done.stderr
    status, _ = live.stage.page("/")
    assert status == 200
    edit(live.stage, SETTINGS, "INSTALLED_APPS = [\n",
         'INSTALLED_APPS = [\n    "django.contrib.staticfiles",\n')
    next_deploy_succeeds(live.stage, "With staticfiles again")


def test_requirement_that_cannot_be_installed(live):
    """Refused on the workstation, which builds the wheels, before any host is contacted."""
    (live.stage.source / "requirements.txt").write_text("Django==5.2.999\n")
    done = live.stage.cli("deploy-act", "storefront", check=False)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"backstage: error: {live.stage.source / 'requirements.txt'}: "
                           "building its wheels failed: ")
    assert "No matching distribution found for Django==5.2.999" in line
    assert_nothing_lost(live)
    assert not locks_held(live.stage)
    next_deploy_succeeds(live.stage, "After a bad requirement")


def test_nginx_template_that_fails_nginx_t(live):
    templates = live.stage.work / "templates"
    templates.mkdir()
    default = (REPO / "templates" / "gig.conf.j2").read_text()
    (templates / "gig.conf.j2").write_text(
        default.replace("server_tokens off;", "server_tokens off;\n    no_such_directive on;"))
    stderr = failed_deploy(live, "gig")
    assert "nginx -t refused the new configuration; the previous one is kept" in stderr
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a bad nginx template")


def test_act_port_already_taken(live):
    port = 9081
    taker = live.stage.fleet.run(  # a foreign process holds the port the act is about to use
        "h1", f"setsid python3 -c 'import socket, time; s = socket.socket(); "
              f"s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(600)' "
              "</dev/null >/dev/null 2>&1 & echo $!").stdout.strip()
    try:
        text = live.stage.inventory.read_text()
        live.stage.inventory.write_text(text.replace('env = {', f'http_port = {port}\nenv = {{'))
        stderr = failed_deploy(live, "health")
        assert "Address already in use" in stderr and "never opened its socket" in stderr
    finally:
        live.stage.fleet.run("h1", ["kill", taker])
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a taken port")


def test_disk_full(live):
    releases = f"{ACT}/releases"
    live.stage.fleet.run("h1", disk_nearly_full(releases))
    try:
        stderr = failed_deploy(live, "upload")
        assert "No space left on device" in stderr
    finally:
        live.stage.fleet.run("h1", ["umount", releases])
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a full disk")


def disk_nearly_full(path: str, headroom_kib: int = 16) -> str:
    """Shell that puts ``path`` on a tmpfs holding its current files and little more."""
    return (f"set -e; tmp=$(mktemp -d); cp -a {path}/. $tmp/; "
            f"mount -t tmpfs -o size=64m tmpfs {path}; cp -a $tmp/. {path}/; rm -rf $tmp; "
            f"used=$(df --output=used -k {path} | tail -n 1); "
            f"mount -o remount,size=$((used + {headroom_kib}))k {path}")


# --- the deploying process interrupted or killed, in each phase ------------------------------

# Shell tests on the host for "the deploy is in this phase" (``{live}``: the live release).
PHASES = {
    "prepare": f"test -e {ROOT}/state/locks/act/storefront/info.json",
    # Release ids sort by time: the newest vassal file is the new release's.
    "start": f'[[ "$(ls {ROOT}/vassals/*.ini | tail -n 1)" > '
             f'{ROOT}/vassals/storefront@{{live}}.ini ]]',
    "switch": f'[ "$(readlink {ROOT}/run/storefront.sock)" != storefront/{{live}}.sock ]',
}


def deploy_in_background(live: Live, phase: str) -> subprocess.Popen:
    """Start deploy-act in its own process group, as a shell runs it, and return once the
    deploy is in ``phase``. Its health checks take a second, so the start phase (the new
    vassal's check) and the switch phase (the check through nginx) last long enough to be hit.
    """
    edit(live.stage, VIEWS, "    for model in (Person, Greeting):",
         "    __import__('time').sleep(1)\n    for model in (Person, Greeting):")
    deploy = subprocess.Popen(
        interruptible([sys.executable, "-m", "backstage", "deploy-act", "storefront",
                       "--inventory", str(live.stage.inventory)]), cwd=live.stage.work,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    reached = PHASES[phase].format(live=live.before.release)
    deadline = time.monotonic() + 120
    while live.stage.fleet.run("h1", reached, check=False).returncode != 0:
        assert deploy.poll() is None, f"the deploy ended before its {phase} phase"
        assert time.monotonic() < deadline, f"the deploy never reached its {phase} phase"
        time.sleep(0.02)
    return deploy


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c(live, phase):
    """SIGINT to the deploy's process group, as Ctrl-C in a terminal sends it: the host stops
    after its current step, switched hosts go back, and the lock is freed."""
    deploy = deploy_in_background(live, phase)
    os.killpg(deploy.pid, signal.SIGINT)
    _, stderr = deploy.communicate(timeout=120)
    assert deploy.returncode == 130, stderr
    assert "interrupted" in stderr
    assert_nothing_lost(live)
    assert not locks_held(live.stage)
    next_deploy_succeeds(live.stage, f"After Ctrl-C in {phase}")


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill(live, phase):
    """SIGKILL leaves the lock: the next deploy takes it over, its holder being gone."""
    deploy = deploy_in_background(live, phase)
    os.killpg(deploy.pid, signal.SIGKILL)
    deploy.wait()
    if phase == "switch":  # the host keeps the new release it had checked, and says so
        release = live_release(live.stage)
        assert_nothing_lost(live, release=release)
        last = json.loads(snapshot(live.stage).history.splitlines()[-1])
        assert (last["event"], last["release"]) == ("deploy", release)
    else:
        assert_nothing_lost(live)
    # The next deploy takes the lock over (its holder is provably gone): no unlock needed.
    next_deploy_succeeds(live.stage, f"After SIGKILL in {phase}")


# --- the host's side fails ------------------------------------------------------------------


def test_ssh_connection_dropped_mid_upload(live):
    """The host's sshd session dies while the release streams in (its tar is paused first, so
    the upload is surely unfinished): the deploy fails naming the connection, frees its lock
    over a new connection and leaves the live release alone."""
    (live.stage.source / "greetings" / "static" / "big.bin").write_bytes(os.urandom(20 << 20))
    deploy = subprocess.Popen(
        [sys.executable, "-m", "backstage", "deploy-act", "storefront", "--inventory",
         str(live.stage.inventory)], cwd=live.stage.work, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    tar = wait_for_pid(live.stage, r"^tar -xzf - -C \S+/\.incoming-", deploy)
    sessions = live.stage.fleet.run("h1", "pgrep --parent 1 --exact sshd").stdout.split()
    live.stage.fleet.run("h1", ["kill", "-STOP", tar])
    live.stage.fleet.run("h1", ["kill", "-KILL", *sessions])
    live.stage.fleet.run("h1", ["kill", "-CONT", tar])
    _, stderr = deploy.communicate(timeout=120)
    assert deploy.returncode == 1, stderr
    assert "h1: step 'release' cut short: connection lost while running a command" in stderr
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a dropped connection")


def wait_for_pid(stage, pattern: str, deploy: subprocess.Popen) -> str:
    """The pid of the host's process whose command line matches ``pattern``, once there is."""
    deadline = time.monotonic() + 120
    while True:
        found = stage.fleet.run("h1", ["pgrep", "--full", pattern], check=False)
        if found.returncode == 0:
            return found.stdout.split()[0]
        assert deploy.poll() is None and time.monotonic() < deadline, f"no {pattern!r} ran"
        time.sleep(0.02)


def test_emperor_not_running(live):
    """Its vassals end with it, so the act is down until setup-stage; the deploy refuses at
    once, before changing anything, and says so."""
    live.served_all()
    live.stage.fleet.run("h1", f"kill -KILL $(cat {ROOT}/run/emperor.pid)")
    done = live.stage.cli("deploy-act", "storefront", check=False)
    assert done.returncode == 1
    assert "h1: the uWSGI Emperor is not running: run setup-stage" in done.stderr
    assert not locks_held(live.stage)
    live.stage.cli("setup-stage")
    wait_serving(live.stage)
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After the Emperor stopped")


def test_host_restarted(live):
    """The host goes down mid-deploy and boots again (new namespaces, /run and /tmp empty,
    disks kept): after setup-stage it serves the live release again, with nothing lost."""
    live.served_all()  # until the host goes down
    deploy = deploy_in_background(live, "prepare")
    live.stage.fleet.kill("h1")
    _, stderr = deploy.communicate(timeout=120)
    assert deploy.returncode == 1, stderr
    assert "h1: step 'release' cut short: connection lost" in stderr, stderr
    live.stage.fleet.restart("h1")
    live.stage.cli("setup-stage")
    wait_serving(live.stage)
    assert_nothing_lost(live)
    # The host was down when the deploy gave up: its lock is left, stale, and the next
    # deploy takes it over.
    next_deploy_succeeds(live.stage, "After a restart")


def wait_serving(stage, timeout: float = 30) -> None:
    """Wait until the gig answers 200 (vassals come up a moment after their Emperor)."""
    deadline = time.monotonic() + timeout
    while stage.page("/")[0] != 200:
        assert time.monotonic() < deadline, "the act did not come back"
        time.sleep(0.2)
