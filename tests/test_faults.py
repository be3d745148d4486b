"""Fault injection on a real fleet host (issue 8): one fault per test, during a deploy under
light load. Each asserts that the previous release keeps serving with no failed request, that
nothing is lost (data, media, env, history), that the error names the step and the exit is
non-zero, and that the next deploy succeeds."""

import hashlib
import json
import re
import shutil
from dataclasses import dataclass

import pytest

from tests.deploying import EXAMPLE, REPO, Load, make_stage

pytestmark = pytest.mark.fleet
PRODUCTION = "faults"
ROOT = f"/srv/backstage/{PRODUCTION}"
ACT = f"{ROOT}/acts/storefront"
HOME = "greetings/templates/greetings/home.html"
URLS = "storefront/urls.py"
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
        stage.fleet.run("h1", f"printf 'media survives\\n' > {ACT}/shared/media/{MEDIA}")
        yield stage
    finally:
        stage.fleet.stop()


@dataclass
class Snapshot:
    """What must survive a failed deploy: the live release and everything outside it."""

    release: str
    page: str
    media: str
    env: str
    history: str


def live_release(stage) -> str:
    out = stage.fleet.run("h1", f"readlink {ROOT}/run/storefront.sock; readlink {ACT}/current")
    socket_link, current = out.stdout.split()
    release = socket_link.removeprefix("storefront@").removesuffix(".sock")
    assert current == f"releases/{release}", "the stable socket and current disagree"
    return release


def snapshot(stage) -> Snapshot:
    release = live_release(stage)
    status, page = stage.page("/")
    assert status == 200, page
    media_status, media = stage.page(f"/media/{MEDIA}")
    assert media_status == 200, media
    env = stage.fleet.run("h1", f"cat {ACT}/shared/env-{release}").stdout
    assert "FAULTS_MARK=kept" in env
    history = stage.fleet.run("h1", f"cat {ROOT}/state/history.jsonl").stdout
    return Snapshot(release, page, media, hashlib.sha256(env.encode()).hexdigest(), history)


@dataclass
class Live:
    """A deployed act under light load, with what it served before the fault."""

    stage: object
    before: Snapshot
    load: Load


@pytest.fixture
def live(stage):
    """The act as its last good deploy left it, its source and inventory pristine, under load."""
    restore(stage)
    before = snapshot(stage)
    load = Load(stage, connections=2)
    yield Live(stage, before, load)
    if load.process.poll() is None:
        load.finish()


def restore(stage) -> None:
    """Undo a test's faults on the workstation: source, inventory, templates."""
    shutil.rmtree(stage.source)
    shutil.copytree(EXAMPLE, stage.source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    stage.inventory.write_text(stage.pristine)
    shutil.rmtree(stage.work / "templates", ignore_errors=True)


def assert_nothing_lost(live: Live) -> None:
    """0 failed requests, and the previous release serves the same data, media, env and a
    history that only grew."""
    result = live.load.finish()
    assert result["requests"] > 0
    assert result["socket_errors"] == 0 and result["non_2xx"] == 0, result
    after = snapshot(live.stage)
    assert after.release == live.before.release
    assert after.page == live.before.page
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
        migrations.RunPython(fail),
    ]
"""


def test_failing_migration(live):
    (live.stage.source / "greetings" / "migrations" / "0002_fail.py").write_text(FAILING_MIGRATION)
    assert "this migration fails on purpose" in failed_deploy(live, "migrate greetings")
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a failing migration")


def test_requirement_that_cannot_be_installed(live):
    (live.stage.source / "requirements.txt").write_text("Django==5.2.999\n")
    assert "No matching distribution found for Django==5.2.999" in failed_deploy(live, "venue")
    assert_nothing_lost(live)
    next_deploy_succeeds(live.stage, "After a bad requirement")


def test_nginx_template_that_fails_nginx_t(live):
    templates = live.stage.work / "templates"
    templates.mkdir()
    default = (REPO / "backstage" / "render" / "templates" / "gig.conf.j2").read_text()
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
