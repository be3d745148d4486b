"""Operator errors and bad input on the command line (issue 12): every one is a single line on
stderr, exit 2, no Python traceback, and no host contacted.

The CLI runs as a user runs it (``.venv/bin/backstage`` in a subprocess). The inventory's
ssh_config sends every connection through a ProxyCommand that only records the host it was
asked for, so "nothing was contacted" is checked, not assumed.
"""

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backstage import errors
from tests.support.inventories import example_inventory

ROOT = Path(__file__).resolve().parents[1]
BACKSTAGE = ROOT / ".venv" / "bin" / "backstage"

INVENTORY = example_inventory({"web1": "web", "web2": "web", "db1": "db"})

# (name, argv, what the one line must say)
NEGATIVE_RUNS = [
    # finding 6: an empty selection is an error, not "every host"
    ("hosts-empty", ["status", "--hosts", ""], r"--hosts: .*empty"),
    ("hosts-comma", ["deploy-act", "storefront", "--hosts", ","], r"--hosts: .*empty"),
    ("hosts-blank", ["setup-stage", "--hosts", " , "], r"--hosts: .*empty"),
    ("hosts-none-plays-act", ["deploy-act", "storefront", "--hosts", "db1"],
     r"--hosts: db1: .*storefront.*web1, web2"),
    ("hosts-typo", ["status", "--hosts", "wbe1"], r"unknown host 'wbe1'.*did you mean 'web1'"),
    ("inventory-empty", ["status", "--inventory", ""], r"--inventory: .*empty"),
    ("to-empty", ["rollback", "storefront", "--to", ""], r"--to: .*empty"),
    ("migrate-back-and-force", ["rollback", "storefront", "--migrate-back", "--force"],
     r"--migrate-back and --force: give one of them"),
    # finding 7: numbers are parsed by Backstage, with the option named
    ("parallel-abc", ["deploy-act", "storefront", "--parallel", "abc"], r"--parallel: .*'abc'"),
    ("parallel-zero", ["deploy-act", "storefront", "--parallel", "0"], r"--parallel: .*'0'"),
    ("limit-abc", ["history", "--limit", "abc"], r"--limit: .*'abc'"),
    ("limit-negative", ["history", "--limit", "-5"], r"--limit: .*'-5'"),
    # finding 9: --dry-run validates what a deploy validates
    ("dry-run-serial", ["deploy-act", "storefront", "--dry-run", "--serial", "x"], r"--serial: "),
    ("dry-run-max-fail", ["deploy-act", "storefront", "--dry-run", "--max-fail", "-1"],
     r"--max-fail: "),
    ("serial-zero", ["deploy-act", "storefront", "--dry-run", "--serial", "0%"], r"--serial: "),
    ("serial-empty", ["deploy-act", "storefront", "--serial", ""], r"--serial: .*empty"),
    # finding 9: usage errors exit 2 with one line, typos get a suggestion
    ("unknown-task", ["deploi-act", "storefront"], r"unknown task 'deploi-act'.*'deploy-act'"),
    ("missing-argument", ["rollback"], r"rollback: missing .*'act'"),
    ("no-act", ["deploy-act"], r"name the acts to deploy, or --all"),
    ("act-and-all", ["deploy-act", "storefront", "--all"], r"name the acts to deploy, or --all"),
    ("all-and-act", ["deploy-act", "--all", "storefront"], r"name the acts to deploy, or --all"),
    ("unknown-of-several", ["deploy-act", "storefront,nope"], r"unknown act 'nope'"),
    ("extra-argument", ["deploy-act", "storefront", "extra"], r"unexpected argument 'extra'"),
    ("unknown-option", ["status", "--jsn"], r"status: unknown option '--jsn'.*'--json'"),
    ("option-without-value", ["deploy-act", "storefront", "--parallel"],
     r"--parallel: needs a value"),
    ("help-unknown-task", ["--help", "deploi-act"], r"unknown task 'deploi-act'.*'deploy-act'"),
    ("unknown-act", ["deploy-act", "storefrnt"], r"unknown act 'storefrnt'.*'storefront'"),
    ("inventory-key-typo", ["check", "--inventory", "typo.toml"],
     r"typo.toml: hosts.web1.adress: unknown key \(did you mean 'address'\?\)"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("operator")
    (root / "inventories").mkdir()
    (root / "inventories" / "shop.toml").write_text(INVENTORY)
    (root / "inventories" / "known_hosts").write_text("")
    contacted = root / "contacted"
    (root / "inventories" / "ssh_config").write_text(
        f"Host *\n  ProxyCommand /bin/sh -c 'echo %h >> {contacted}'\n")
    (root / "typo.toml").write_text(
        INVENTORY.replace('[hosts.web1]\n', '[hosts.web1]\nadress = "10.0.0.1"\n')
        .replace('"ssh_config"', '"inventories/ssh_config"'))
    return root


def run_cli(project: Path, argv: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}
    return subprocess.run([str(BACKSTAGE), *argv], cwd=project, env=env, text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def negative_runs(project) -> dict[str, subprocess.CompletedProcess]:
    """Every negative run, once (a few at a time), and which hosts they contacted."""
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip([n for n, _, _ in NEGATIVE_RUNS],
                        pool.map(lambda r: run_cli(project, r[1]), NEGATIVE_RUNS)))
    return done


@pytest.mark.parametrize(("name", "argv", "says"), NEGATIVE_RUNS, ids=[r[0] for r in NEGATIVE_RUNS])
def test_bad_usage_is_one_line_exit_2(negative_runs, name, argv, says):
    done = negative_runs[name]
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("backstage: error: "), done.stderr
    assert re.search(says, lines[0]), lines[0]


def test_no_traceback_and_no_host_contacted_in_any_negative_run(project, negative_runs):
    for name, done in negative_runs.items():
        assert "Traceback" not in done.stdout + done.stderr, (name, done.stderr)
    contacted = project / "contacted"
    assert not contacted.exists(), contacted.read_text()


def test_an_empty_hosts_selection_would_otherwise_reach_every_host(project):
    """The ProxyCommand does record contacts: a run without --hosts reaches every host."""
    contacted = project / "contacted"
    try:
        done = run_cli(project, ["history"])
        assert done.returncode == 3, done.stderr
        assert sorted(contacted.read_text().split()) == ["db1", "web1", "web2"]
    finally:
        contacted.unlink(missing_ok=True)


def test_a_reader_that_stops_early_is_no_traceback(project):
    """``backstage --list | head -1``: the pipe closes before the listing is written."""
    env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}
    process = subprocess.Popen([str(BACKSTAGE), "--list"], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert "Traceback" not in process.stderr.read()
    process.wait(timeout=60)


# --- the line a failed step is summarised by (finding 12) -----------------------------------

CHECK_WARNINGS = """\
System check identified some issues:

WARNINGS:
?: (security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.
?: (security.W008) Your SECURE_SSL_REDIRECT setting is not set to True.

System check identified 2 issues (0 silenced).
"""

UNKNOWN_COMMAND = "Unknown command: 'collectstatic'\nType 'manage.py help' for usage.\n"

COMMAND_ERROR = "CommandError: Conflicting migrations detected; multiple leaf nodes.\n"

TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/x/manage.py", line 22, in <module>
    main()
KeyError: 'DJANGO_SECRET_KEY'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/x/manage.py", line 22, in <module>
    main()
  File "/srv/x/settings.py", line 3, in <module>
    raise ImproperlyConfigured("DJANGO_SECRET_KEY:
django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY is not set
Sentry: flushing 0 events
"""

SYSTEM_CHECK_ERROR = """\
SystemCheckError: System check identified some issues:

ERRORS:
greetings.Greeting.person: (fields.E300) Field defines a relation with model 'Person', which \
is either not installed, or is abstract.

WARNINGS:
?: (security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.
"""


@pytest.mark.parametrize(("output", "line"), [
    (CHECK_WARNINGS + UNKNOWN_COMMAND, "Unknown command: 'collectstatic'"),
    (CHECK_WARNINGS + COMMAND_ERROR, COMMAND_ERROR.strip()),
    (CHECK_WARNINGS + TRACEBACK,
     "django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY is not set"),
    (SYSTEM_CHECK_ERROR, ("greetings.Greeting.person: (fields.E300) Field defines a relation "
                         "with model 'Person', which is either not installed, or is abstract.")),
    (("tar: ./x: Cannot write: No space left on device\n"
      "tar: Exiting with failure status\n"),
     "tar: ./x: Cannot write: No space left on device"),
    (("nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/x.conf:3\n"
      "nginx: configuration file /etc/nginx/nginx.conf test failed\n"),
     "nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/x.conf:3"),
    (CHECK_WARNINGS + "something went wrong\n", "something went wrong"),
    (CHECK_WARNINGS, "System check identified 2 issues (0 silenced)."),
], ids=["unknown-command", "command-error", "chained-traceback", "system-check-error",
        "disk-full", "nginx-t", "plain-last-line", "only-warnings"])
def test_the_error_line_of_a_failed_steps_output(output, line):
    assert errors.error_line(output) == line


def test_a_failed_step_is_summarised_by_its_error_not_its_last_line():
    failed = errors.StepFailed("h1", "collectstatic", CHECK_WARNINGS + UNKNOWN_COMMAND)
    assert str(failed) == "h1: step 'collectstatic' failed: Unknown command: 'collectstatic'"


@pytest.mark.parametrize(("line", "entry"), [
    ('{"time": "t", "event": "deploy"}', {"time": "t", "event": "deploy"}),
    ('{"time": "20', {"event": "unreadable", "line": '{"time": "20'}),
    ('["not", "an", "entry"]', {"event": "unreadable", "line": '["not", "an", "entry"]'}),
])
def test_a_history_line(line, entry):
    from backstage.operations.history import history_entry

    assert history_entry(line) == entry


# --- fab -H (issue 13) ------------------------------------------------------------------------

FAB = ROOT / ".venv" / "bin" / "fab"


def test_fab_dash_h_is_refused_naming_the_tasks_hosts_option(project):
    """``fab -H web1,web2 deploy-act storefront`` would run the task once per host, each run
    deploying every host of the act: refused in one line naming ``--hosts``, nothing contacted."""
    (project / "fabfile.py").write_text("from backstage.tasks import ns  # noqa: F401\n")
    contacted = project / "contacted"
    env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}
    for argv in (["-H", "web1,web2", "deploy-act", "storefront"], ["--hosts", "web1", "status"]):
        done = subprocess.run([str(FAB), *argv], cwd=project, env=env, text=True,
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("backstage: error: "), done.stderr
        assert "fab -H" in lines[0] and "--hosts h1,h2" in lines[0], lines[0]
        assert not contacted.exists(), contacted.read_text()


def test_fab_without_dash_h_runs_the_task_once(project):
    """The same fabfile without ``-H``: the task runs (and, here, reaches each host once)."""
    (project / "fabfile.py").write_text("from backstage.tasks import ns  # noqa: F401\n")
    contacted = project / "contacted"
    env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}
    try:
        done = subprocess.run([str(FAB), "history", "--hosts", "web1,web2"], cwd=project, env=env,
                              text=True, capture_output=True, timeout=120, check=False)
        assert done.returncode == 3, done.stderr
        assert sorted(contacted.read_text().split()) == ["web1", "web2"]
    finally:
        contacted.unlink(missing_ok=True)
