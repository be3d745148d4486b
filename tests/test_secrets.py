"""Secrets: passed on stdin into a 0600 env file, never in argv, never in a log or in output.

A fleet test deploys with random secret values while it watches the host's and the
workstation's process tables, then greps every log, the history, every file under the
production's root (but the env file) and the ``--verbose`` output for them. Then a release
whose ``check --deploy`` prints the secrets fails, and what Backstage shows says ``[REDACTED]``.
"""

import io
import json
import logging
import secrets
import subprocess
import tarfile
import threading
import time

import pytest

from backstage.artefacts import bundle
from backstage.errors import StepFailed
from backstage.model.secrets import Redactor, Secret, reveal
from backstage.rollout.report import Reporter

PRODUCTION = "secrets"
ROOT = f"/srv/backstage/{PRODUCTION}"
ENV_FILE_PREFIX = f"{ROOT}/acts/storefront/env/env-"


# --- redaction, alone -----------------------------------------------------------------------------

def test_redact_replaces_every_form_of_a_value():
    token = "s3cr3t-" + secrets.token_hex(8)
    quoted = 'pa"ss\\word'
    redact = Redactor([Secret(token), quoted, "ab"])  # too short to redact: it would blank out words
    text = (f"error: {token} and {token}x; json: {{\"k\": \"pa\\\"ss\\\\word\"}}; "
            f"repr: 'pa\"ss\\\\word'; ab stays")
    out = redact(text)
    assert token not in out and "pa\\\"ss" not in out and quoted not in out
    assert out.count("[REDACTED]") == 4
    assert out.endswith("ab stays")


def test_reporter_redacts_failed_step_details():
    from rich.console import Console

    token = secrets.token_hex(20)
    console = Console(file=io.StringIO(), width=200, highlight=False)
    reporter = Reporter(console=console, verbose=True, redact=Redactor([Secret(token)]))
    reporter.failed("h1", StepFailed("h1", "check", f"Traceback...\nValueError: key={token}"))
    reporter.info(f"note {token}")
    out = console.file.getvalue()
    assert token not in out
    assert out.count("[REDACTED]") == 3  # the error line, its detail line, the note


def secrets_project(tmp_path, name: str, values: dict[str, str]):
    """An inventory of production ``name`` whose act's secrets file holds ``values``."""
    from tests.test_inventory import base_inventory, make_project, write_inventory

    project = make_project(tmp_path / name)
    (project / "shop.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    data = base_inventory()
    data["production"] = name
    data["acts"]["storefront"]["secrets"] = "../shop.env"
    return write_inventory(project, data)


def test_a_loaded_inventory_redacts_its_secrets(tmp_path):
    from backstage.model import load_production

    token = secrets.token_urlsafe(30)
    production = load_production(secrets_project(tmp_path, "shop", {"API_TOKEN": token}))
    assert production.redactor()(f"x {token} y") == "x [REDACTED] y"


def test_a_secret_is_never_shown_by_str_repr_format_or_logging(caplog):
    value = secrets.token_hex(20)
    secret = Secret(value)
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", repr({"KEY": secret}),
             repr([secret]), "%s %r" % (secret, secret), "{}".format(secret)]  # noqa: UP031, UP032
    with caplog.at_level(logging.INFO):
        logging.getLogger("backstage.test").info("secret %s %r", secret, {"KEY": secret})
    for text in [*shown, caplog.text]:
        assert value not in text and "[REDACTED]" in text, text
    with pytest.raises(TypeError):
        json.dumps({"KEY": secret})  # refused, not written out
    assert reveal(secret) == value  # only the env file's writer takes it out


def test_a_loaded_production_never_shows_its_secrets(tmp_path, caplog):
    from backstage import Production
    from backstage.model.inventory import load_production

    token = secrets.token_urlsafe(30)
    path = secrets_project(tmp_path, "shop", {"API_TOKEN": token})
    production = Production.load(path)
    inventory = load_production(path)
    with caplog.at_level(logging.INFO):
        logging.getLogger("backstage.test").info("%s %r %r", production, production, inventory)
    secrets_of = inventory.secrets_of("storefront")
    for text in [repr(production), str(production), f"{production!r}", repr(inventory),
                 repr(production.redact), repr(secrets_of), str(vars(production)), caplog.text]:
        assert token not in text, text
    assert reveal(secrets_of["API_TOKEN"]) == token


def test_two_productions_redact_only_their_own_secrets(tmp_path):
    from backstage import Production

    shared, own_a, own_b = (secrets.token_hex(16) for _ in range(3))
    a = Production.load(secrets_project(tmp_path, "alpha", {"SHARED": shared, "MINE": own_a}))
    b = Production.load(secrets_project(tmp_path, "beta", {"SHARED": shared, "MINE": own_b}))
    text = f"{shared} {own_a} {own_b}"
    assert a.redact(text) == f"[REDACTED] [REDACTED] {own_b}"
    assert b.redact(text) == f"[REDACTED] {own_a} [REDACTED]"
    assert a.reporter.redact is a.redact and b.reporter.redact is b.redact


def test_a_secrets_file_inside_the_source_is_not_uploaded(tmp_path):
    source = tmp_path / "project"
    (source / "secrets").mkdir(parents=True)
    (source / "manage.py").write_text("")
    (source / "secrets" / "storefront.env").write_text("API_TOKEN=" + secrets.token_hex(20))
    with tarfile.open(fileobj=io.BytesIO(bundle.pack(source).full())) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.endswith("storefront.env")], names


# --- on a fleet host --------------------------------------------------------------------------------

class Watcher(threading.Thread):
    """Samples ``ps -eo args`` on the host and on the workstation until stopped."""

    def __init__(self, fleet):
        super().__init__(daemon=True)
        self.fleet, self.samples = fleet, {"host": [], "workstation": []}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples["host"].append(
                self.fleet.run("h1", ["ps", "-eo", "args"], check=False).stdout)
            self.samples["workstation"].append(subprocess.run(
                ["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout)
            time.sleep(0.02)

    def stop(self):
        self.done.set()
        self.join(timeout=30)


SETTINGS_HOOK = '''
import sys as _sys
if "check" in _sys.argv and os.environ.get("LEAK_SECRETS_ON_CHECK") == "1":
    raise ImproperlyConfigured(
        f"refusing key {SECRET_KEY} and token {os.environ.get('API_TOKEN')}")
'''


@pytest.fixture(scope="module")
def secret_stage(tmp_path_factory):
    from tests.support.deploying import make_stage

    work = tmp_path_factory.mktemp("secrets")
    stage = make_stage(work, PRODUCTION, {"h1": 'roles = ["web"]'})
    values = [secrets.token_urlsafe(38)[:40], secrets.token_hex(20)]  # 40 characters each
    (work / "secrets.env").write_text(f"DJANGO_SECRET_KEY={values[0]}\nAPI_TOKEN={values[1]}\n")
    settings_py = stage.source / "storefront" / "settings.py"
    settings_py.write_text(settings_py.read_text() + SETTINGS_HOOK)
    try:
        setup = stage.cli("setup-stage", "--verbose")
        watcher = Watcher(stage.fleet)
        watcher.start()
        try:
            started = time.monotonic()
            deploy = stage.cli("deploy-act", "storefront", "--verbose")
            seconds = time.monotonic() - started
        finally:
            watcher.stop()
        yield stage, values, watcher.samples, [setup, deploy], seconds
    finally:
        stage.fleet.stop()


def hits(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


@pytest.mark.fleet
def test_secrets_never_in_any_process_table_during_a_deploy(secret_stage):
    _stage, values, samples, _outputs, seconds = secret_stage
    # Watched throughout: several samples a second of a deploy that takes seconds.
    assert len(samples["host"]) >= max(5, seconds * 2), (len(samples["host"]), seconds)
    assert any("uwsgi" in s for s in samples["host"])  # the samples do see the host's processes
    for where, taken in samples.items():
        leaked = [s for s in taken if hits(s, values)]
        assert not leaked, f"a secret was in the {where}'s process table: {leaked[0][:2000]}"


@pytest.mark.fleet
def test_secrets_never_in_logs_history_files_or_verbose_output(secret_stage):
    stage, values, _samples, outputs, _seconds = secret_stage
    status, body = stage.page("/")
    assert status == 200, body
    for done in outputs:
        assert not hits(done.stdout + done.stderr, values)
    # Every file under the production's root, nginx's logs and config, root's home and /tmp:
    # only the env file holds them. The values go to grep on stdin, not in its argv.
    found = stage.fleet.run(
        "h1", ["grep", "-rlF", "-f", "/dev/stdin", ROOT, "/var/log", "/etc/nginx", "/root",
               "/tmp", "/run"], input="\n".join(values) + "\n", check=False)
    assert found.returncode in (0, 1), found.stderr
    # The env files (one per release, each 0600) hold them, and nothing else does.
    env_files = found.stdout.split()
    assert env_files and all(f.startswith(ENV_FILE_PREFIX) for f in env_files), found.stdout
    live = stage.fleet.run("h1", ["readlink", f"{ROOT}/acts/storefront/current"]).stdout.strip()
    env_file = ENV_FILE_PREFIX + live.rsplit("/", 1)[-1]
    assert env_file in env_files
    # The places named in the issue, each shown to exist (so the grep above did read them).
    for path in (f"{ROOT}/log/storefront.log", f"{ROOT}/log/emperor.log",
                 f"{ROOT}/state/history.jsonl", f"{ROOT}/log/nginx-shop.access.log"):
        assert stage.fleet.run("h1", ["test", "-s", path], check=False).returncode == 0, path
    for path in env_files:
        mode = stage.fleet.run("h1", ["stat", "-c", "%a %U", path]).stdout.split()
        assert mode == ["600", f"bs-{PRODUCTION}-storefront"], path  # the act's own user
    lines = stage.fleet.run("h1", ["cat", env_file]).stdout.splitlines()
    assert f"DJANGO_SECRET_KEY={values[0]}" in lines and f"API_TOKEN={values[1]}" in lines


@pytest.fixture(scope="module")
def leaky_check(secret_stage):
    """A deploy whose ``manage.py check`` fails with a message holding both secrets."""
    stage, values, *_ = secret_stage
    text = stage.inventory.read_text()
    runs = []
    # A failed deploy leaves its env file behind, so each run changes the env to deploy again.
    for run, flag in enumerate(["--verbose", "--json"]):
        stage.inventory.write_text(text.replace(
            'health = { path = "/healthz" }', 'health = { path = "/healthz" }\n'
            f'env = {{ LEAK_SECRETS_ON_CHECK = "1", RUN = "{run}" }}'))
        runs.append(stage.cli("deploy-act", "storefront", flag, check=False))
    stage.inventory.write_text(text)
    done, as_json = runs
    return stage, values, done, as_json


@pytest.mark.fleet
def test_failed_step_output_shows_redacted_not_the_secret(leaky_check):
    stage, values, done, _as_json = leaky_check
    assert done.returncode == 1, done.stderr
    assert "step 'check' failed" in done.stderr
    assert "refusing key [REDACTED] and token [REDACTED]" in done.stderr
    # Every line the reporter prints for the failure (all but the last, the program's own).
    lines = done.stderr.rstrip("\n").splitlines()
    assert not hits("\n".join(lines[:-1]) + done.stdout, values), done.stderr
    status, _ = stage.page("/")
    assert status == 200  # the previous release still serves


@pytest.mark.fleet
def test_failed_deploy_output_holds_no_secret_at_all(leaky_check):
    _stage, values, done, as_json = leaky_check
    assert as_json.returncode == 1, as_json.stderr
    for run in (done, as_json):
        assert not hits(run.stdout + run.stderr, values), run.stdout + run.stderr
