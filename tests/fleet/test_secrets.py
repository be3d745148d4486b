"""Secrets on a fleet host: passed on stdin into a 0600 env file, never in argv, never in a log
or in output.

A deploy with random secret values runs while the host's and the workstation's process tables
are watched, then every log, the history, every file under the production's root (but the env
file) and the ``--verbose`` output are grepped for them. Then a release whose
``check --deploy`` prints the secrets fails, and what Backstage shows says ``[REDACTED]``.
"""

import secrets
import subprocess
import threading
import time

import pytest

PRODUCTION = "secrets"
ROOT = f"/srv/backstage/{PRODUCTION}"
ENV_FILE_PREFIX = f"{ROOT}/acts/storefront/env/env-"


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


# Settings are first loaded in a deploy's first management step, ``check`` (all the steps run
# in one process, started once: backstage/remote/managesteps.py).
SETTINGS_HOOK = '''
if os.environ.get("LEAK_SECRETS_ON_CHECK") == "1":
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
