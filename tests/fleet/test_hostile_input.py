"""Hostile input, end to end on a fleet host: a refused inventory reaches no host, and a hostile
env reaches the act verbatim, never run by a shell or expanded by uWSGI. What each part does
with hostile input is tests/test_hostile_input.py."""

import json
import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.test_hostile_input import (
    CANARY,
    SLOTS,
    _secret,
    no_canary,  # noqa: F401  (autouse: no injected command ran)
)
from tests.test_inventory import BACKSTAGE, base_inventory, dump_toml, make_project, toml_str


def counting_ssh_config(fleet, marker: Path) -> Path:
    """The fleet's ssh_config whose ProxyCommand first touches ``marker``: any connection
    attempt, even one refused later, leaves it behind."""
    text = fleet.ssh_config.read_text()
    text = re.sub(r"ProxyCommand (.*)", lambda m: "ProxyCommand sh -c " + shlex.quote(
        f"touch {marker}; exec {m.group(1)}"), text)
    path = fleet.workdir / "counting_ssh_config"
    path.write_text(text)
    return path


HOSTILE_INVENTORIES = {
    "act name with ;": ("act name", f"storefront; touch {CANARY}"),
    "domain with $()": ("domain", f"$(touch {CANARY}).test"),
    "root with ..": ("host root", "/srv/../tmp"),
    "env value with newline": ("env value", f"x\ntouch {CANARY}"),
    "static with ..": ("static", "/static/../../"),
    "health path with backtick": ("health path", f"/`touch {CANARY}`"),
    "manage with ..": ("manage", "../manage.py"),
    "secret with NUL": ("secret value", "a\0b"),
}


@pytest.mark.fleet
def test_refused_inventory_exits_2_and_contacts_no_host(fleet, tmp_path):
    project = make_project(tmp_path / "project")
    marker = tmp_path / "connected"
    ssh_config = counting_ssh_config(fleet, marker)
    env = {k: v for k, v in os.environ.items() if k != "BACKSTAGE_INVENTORY"}

    def inventory(name, slot=None, text=None):
        data = base_inventory()
        if slot == "secret value":
            _secret(data, text, project)
        elif slot:
            SLOTS[slot][0](data, text)
        data["hosts"] = {"h1": data["hosts"].pop("web1")}
        data["ssh"] = {"config": str(ssh_config)}
        path = project / "inventories" / f"{name}.toml"
        path.write_text(dump_toml(data), encoding="utf-8")
        return path

    for label, (slot, text) in HOSTILE_INVENTORIES.items():
        path = inventory("hostile", slot, text)
        for task in (["setup-stage"], ["deploy-act", "storefront"]):
            done = subprocess.run([str(BACKSTAGE), *task, "--inventory", str(path)], cwd=project,
                                  env=env, capture_output=True, text=True, timeout=120,
                                  check=False)
            assert done.returncode == 2, (label, task, done.stdout, done.stderr)
            assert done.stderr.startswith((f"backstage: error: {path}: ",
                                           f"backstage: error: {project}/secrets.env: ")), label
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
            assert not marker.exists(), f"{label}: {task} connected to the host"
    assert fleet.run("h1", ["ls", "-A", "/srv"]).stdout == ""  # nothing was made there
    assert fleet.run("h1", ["test", "-e", CANARY], check=False).returncode == 1
    assert not Path(CANARY).exists()

    # The witness works: a valid inventory does connect.
    done = subprocess.run([str(BACKSTAGE), "history", "--inventory", str(inventory("valid"))],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert marker.exists()


@pytest.fixture(scope="module")
def hostile_env_stage(tmp_path_factory):
    """The example act deployed with env values and secrets that are shell and uWSGI syntax."""
    from tests.support.deploying import make_stage

    tag = secrets.token_hex(4)
    work = tmp_path_factory.mktemp("hostile-env")
    stage = make_stage(work, "hostile", {"h1": 'roles = ["web"]'})
    shell = f"/tmp/canary-shell-{tag}"
    uwsgi = f"/tmp/canary-uwsgi-{tag}"
    env = {
        "INJ_SUBST": f"$(touch {shell})",
        "INJ_BACKTICK": f"`touch {shell}`",
        "INJ_QUOTE": f"'; touch {shell}; '",
        "INJ_DQUOTE": f'"; touch {shell}; "',
        "INJ_MIXED": "a=b c ; | & < > * ? ~ # ! { } [ ] \\ é \U0001f3ad",
    }
    uwsgi_env = {"INJ_UWSGI_EXEC": f"@(exec://touch {uwsgi})", "INJ_UWSGI_VAR": "$(HOME)",
                 "INJ_UWSGI_FILE": "@(/etc/hostname)"}
    secret_values = {"INJ_SECRET_SUBST": f"$(touch {shell})",
                     "INJ_SECRET_QUOTE": f"'; touch {shell}; '",
                     "INJ_SECRET_UWSGI": f"@(exec://touch {uwsgi})"}
    inline = ", ".join(f"{k} = {toml_str(v)}" for k, v in {**env, **uwsgi_env}.items())
    text = stage.inventory.read_text()
    stage.inventory.write_text(text.replace('health = { path = "/healthz" }',
                                            f'health = {{ path = "/healthz" }}\nenv = {{ {inline} }}'))
    secrets_file = work / "secrets.env"
    with secrets_file.open("a") as f:
        f.write("".join(f"{k}={v}\n" for k, v in secret_values.items()))
    # The act writes down the environment it sees, in the vassal and in manage.py.
    settings_py = stage.source / "storefront" / "settings.py"
    settings_py.write_text(settings_py.read_text() + SEEN_ENV)
    try:
        stage.cli("setup-stage")
        deployed = stage.cli("deploy-act", "storefront", "--verbose")
        yield stage, {**env, **uwsgi_env, **secret_values}, shell, uwsgi, deployed
    finally:
        stage.fleet.stop()


# The act's own folder (its working directory is the release's project root, root's).
SHARED = "/srv/backstage/hostile/acts/storefront/shared/"
SEEN_ENV = f'''
import json
import sys as _sys
_who = "manage" if _sys.argv and _sys.argv[0].endswith("manage.py") else "vassal"
with open(f"{SHARED}seen-env-{{_who}}.json", "w") as _f:  # the bytes, whatever the locale
    json.dump({{k.decode(): v.decode("utf-8", "replace") for k, v in os.environb.items()
               if k.startswith(b"INJ_")}}, _f)
'''


def seen_env(stage, who: str) -> dict:
    return json.loads(stage.fleet.run("h1", ["cat", f"{SHARED}seen-env-{who}.json"]).stdout)


@pytest.mark.fleet
def test_shell_syntax_in_env_and_secrets_never_runs_and_arrives_verbatim(hostile_env_stage):
    stage, values, shell, _uwsgi, _deployed = hostile_env_stage
    status, body = stage.page("/")
    assert status == 200, body
    assert stage.fleet.run("h1", ["test", "-e", shell], check=False).returncode == 1
    assert not Path(shell).exists()
    env_file = stage.fleet.run("h1", "ls /srv/backstage/hostile/acts/storefront/env/env-*"
                               ).stdout.split()[-1]
    assert stage.fleet.run("h1", ["stat", "-c", "%a", env_file]).stdout.strip() == "600"
    lines = stage.fleet.run("h1", ["cat", env_file]).stdout.splitlines()
    for key, value in values.items():
        assert f"{key}={value}" in lines, key
    # manage.py (check, migrate, collectstatic) sees every value as written.
    assert seen_env(stage, "manage") == values
    shell_values = {k: v for k, v in values.items() if "UWSGI" not in k}
    vassal = seen_env(stage, "vassal")
    assert {k: vassal.get(k) for k in shell_values} == shell_values


@pytest.mark.fleet
def test_uwsgi_syntax_in_env_values_is_not_expanded_by_the_vassal(hostile_env_stage):
    stage, values, _shell, uwsgi, _deployed = hostile_env_stage
    ran = stage.fleet.run("h1", ["test", "-e", uwsgi], check=False).returncode == 0
    vassal = seen_env(stage, "vassal")
    assert not ran, f"the vassal ran a command from an env value ({uwsgi} exists)"
    assert vassal == values
