"""The day-two tasks' plan functions and parsing, without a host: ``manage``/``exec`` (which
host, what command), ``logs`` (which files, the command, run here on files of the test),
``env`` (how keys compare, what is masked), and the program's ``--`` and ``-f``."""

import pytest

from backstage.commands.logs import show_logs
from backstage.errors import BackstageError, UsageError
from backstage.model import django, load_production
from backstage.operations.deploy import act_environment
from backstage.operations.env import MASK, compare_env, parse_env, plain_keys
from backstage.operations.logs import plan_logs
from backstage.operations.manage import command_hosts, command_words, plan_command
from backstage.production import Lines
from backstage.tasks.program import short_flags, split_command
from backstage.transport.local import LocalTransport
from backstage.util import sha256
from tests.test_inventory import base_inventory, write_inventory
from tests.test_operations import (
    ACT,
    HOST,
    HostState,
    deploy,
    inputs,
    production,  # noqa: F401  (the fixture shop asks for)
)


@pytest.fixture
def shop(request):
    """test_operations' production (one host, web1, the storefront act)."""
    return request.getfixturevalue("production")


def deployed(shop):
    state = HostState(shop)
    env_text = act_environment(shop, ACT, state.layout)
    plan = deploy(shop, state, inputs(shop), env_text)
    return state.deployed(plan, env_text, "venue1"), plan.release


# --- manage and exec ---------------------------------------------------------------------------

def test_manage_runs_on_the_act_s_first_host_unless_told(tmp_path):
    data = base_inventory()
    data["hosts"] = {"db1": {"roles": ["db"]}, "web1": {"roles": ["web"]},
                     "web2": {"roles": ["web"]}}
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manage.py").write_text("")
    (tmp_path / "app" / "requirements.txt").write_text("Django>=5\n")
    (tmp_path / "inventories").mkdir()
    inventory = load_production(write_inventory(tmp_path, data))
    assert command_hosts(inventory, ACT, None, False) == ["web1"]  # where it migrates
    assert command_hosts(inventory, ACT, None, True) is None  # select_hosts: all of the act's
    assert command_hosts(inventory, ACT, ["web2"], False) == ["web2"]
    with pytest.raises(UsageError, match="not both"):
        command_hosts(inventory, ACT, ["web2"], True)
    with pytest.raises(UsageError, match="unknown act"):
        command_hosts(inventory, "shop", None, False)


def test_a_command_is_needed_after_the_double_dash():
    with pytest.raises(UsageError, match="manage: nothing to run"):
        command_words([], "manage")
    assert command_words(("shell", "-c", "print(1)"), "manage") == ["shell", "-c", "print(1)"]


def test_manage_runs_the_live_release_as_the_act_user_with_its_env_file(shop):
    state, release = deployed(shop)
    layout = state.layout
    command = plan_command(shop, HOST, layout, state.observed(), ACT,
                           ["shell", "-c", "print('it''s')"], django=True)
    assert "setpriv" in command and shop.act_user(ACT) in command
    assert layout.env_file(ACT, release) in command  # read on the host, by the act's shell
    assert layout.vassal(ACT, release) in command  # its venue: the one the vassal runs
    assert layout.in_release(ACT, release, "manage.py") in command
    # Where the app runs: the project's root in the release.
    assert django.working_directory(shop, ACT, layout, release) in command
    assert "hello" not in command  # no value of the environment in the command line


def test_exec_runs_a_whole_command_with_the_venue_first_on_the_path(shop):
    state, _ = deployed(shop)
    command = plan_command(shop, HOST, state.layout, state.observed(), ACT,
                           ["sh", "-c", "exit 3"], django=False)
    assert "PATH=$venue/bin:" in command and "manage.py" not in command


def test_manage_where_the_act_was_never_deployed_says_so(shop):
    state = HostState(shop)
    with pytest.raises(BackstageError, match="never deployed here"):
        plan_command(shop, HOST, state.layout, state.observed(), ACT, ["check"], True)


def test_the_program_keeps_the_words_after_the_double_dash_as_given():
    argv = ["backstage", "manage", "storefront", "--", "shell", "-c", "a b", "--", "-f"]
    assert split_command(argv) == (["backstage", "manage", "storefront"],
                                   ["shell", "-c", "a b", "--", "-f"])
    assert split_command(["backstage", "status"]) == (["backstage", "status"], [])
    assert short_flags(["backstage", "logs", "shop", "-f"]) == \
        ["backstage", "logs", "shop", "--follow"]
    assert short_flags(["backstage", "status", "-f"]) == ["backstage", "status", "-f"]


# --- logs --------------------------------------------------------------------------------------

def test_logs_read_the_files_of_the_source_asked_for(shop):
    layout = HostState(shop).layout
    assert layout.act_log(ACT) in plan_logs(shop, layout, ACT, "act", 5, None, False)
    assert layout.gig_access_log("shop") in plan_logs(shop, layout, ACT, "access", 5,
                                                      None, False)
    emperor = plan_logs(shop, layout, ACT, "emperor", 5, None, True)
    assert layout.emperor_log in emperor and "journalctl" in emperor and "-f" in emperor
    with pytest.raises(UsageError, match="--source: 'kernel' is not one of"):
        plan_logs(shop, layout, ACT, "kernel", 5, None, False)


def run_here(command: str) -> str:
    result = LocalTransport().run(command)
    assert result.ok, result.stderr
    return result.stdout


def test_the_logs_command_shows_the_last_lines_and_filters_before_cutting(tmp_path):
    log = tmp_path / "act.log"
    log.write_text("".join(f"GET /page/{n}\n" for n in range(100)) + "POST /form\n")
    assert run_here(show_logs([str(log)], 3, None, False)) == \
        "GET /page/98\nGET /page/99\nPOST /form\n"
    # The last 2 lines that match, not the matches among the last 2 lines.
    assert run_here(show_logs([str(log)], 2, r"/page/[0-9]5$", False)) == \
        "GET /page/85\nGET /page/95\n"
    assert run_here(show_logs([str(log)], 5, "DELETE", False)) == ""  # no match: no error
    missing = LocalTransport().run(show_logs([str(tmp_path / "none.log")], 5, None, False))
    assert missing.ok and "no log file yet" in missing.stderr


def test_log_lines_are_handed_on_whole():
    got = []
    lines = Lines(got.append)
    lines(b"first\r\nsec")
    lines(b"ond\nthi")
    assert got == ["first", "second"]
    lines.close()
    assert got == ["first", "second", "thi"]


# --- env ---------------------------------------------------------------------------------------

def test_env_keys_compare_by_digest_and_only_plain_values_are_shown():
    plain = ["GREETING", "BACKSTAGE_PRODUCTION"]
    live = {"GREETING": {"sha256": sha256("hello"), "value": "hello"},
            "TOKEN": {"sha256": sha256("old")},
            "BACKSTAGE_PRODUCTION": {"sha256": sha256("shop"), "value": "shop"},
            "GONE": {"sha256": sha256("x")}}
    desired = "GREETING=hi\nTOKEN=new\nBACKSTAGE_PRODUCTION=shop\nADDED=1\n"
    keys = {k.key: (k.state, k.live, k.inventory) for k in compare_env(live, desired, plain)}
    assert keys == {"GREETING": ("changed", "hello", "hi"), "TOKEN": ("changed", MASK, MASK),
                    "BACKSTAGE_PRODUCTION": ("same", "shop", "shop"),
                    "ADDED": ("added", None, MASK), "GONE": ("removed", MASK, None)}


def test_plain_keys_are_the_act_s_env_and_backstage_s_own_but_never_the_databases(shop):
    plain = plain_keys(shop, ACT)
    assert "GREETING" in plain and "BACKSTAGE_PRODUCTION" in plain
    assert "BACKSTAGE_DATABASES" not in plain  # may hold a password
    assert parse_env("A=1\nB=x=y\n\n") == {"A": "1", "B": "x=y"}
