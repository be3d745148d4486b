"""The ``backstage`` program's reading of its command line, before Invoke parses it."""

import pytest

from backstage.tasks.program import optional_acts


@pytest.mark.parametrize(("words", "read"), [
    # The act is the first word, as the README shows it ("status storefront")...
    (["status", "storefront"], ["status", "--act", "storefront"]),
    (["status", "--json", "storefront"], ["status", "--json", "--act", "storefront"]),
    (["status", "--hosts", "web1", "web"], ["status", "--hosts", "web1", "--act", "web"]),
    (["status", "--act", "storefront"], ["status", "--act", "storefront"]),
    (["unlock", "web"], ["unlock", "--act", "web"]),
    # ...or left out, option values aside.
    (["status"], ["status"]),
    (["status", "--hosts", "web1", "--json"], ["status", "--hosts", "web1", "--json"]),
    (["unlock", "--inventory", "shop"], ["unlock", "--inventory", "shop"]),
    # deploy-act's is positional: an empty one stands in for --all's.
    (["deploy-act", "--all", "--serial", "2"], ["deploy-act", "", "--all", "--serial", "2"]),
    (["deploy-act", "web,api", "--all"], ["deploy-act", "web,api", "--all"]),
    (["rollback"], ["rollback"]),  # its act is required: Invoke says it is missing
    (["--list"], ["--list"]),
])
def test_an_optional_act_may_be_left_out(words, read):
    assert optional_acts(["backstage", *words]) == ["backstage", *read]


def test_the_summary_of_a_deploy_that_changed_nothing_names_the_live_release():
    from backstage.engine.rollout import HostOutcome, RolloutReport
    from backstage.tasks.reports import summary_title

    live, new = "20261129T000000000Z-0123abcd", "20261129T010000000Z-0123abcd"
    unchanged = {h: HostOutcome(h, "unchanged", live, live) for h in ("h1", "h2")}
    assert summary_title(RolloutReport("p", "web", new, unchanged)) == \
        f"web: unchanged, {live} is live"
    deployed = {**unchanged, "h2": HostOutcome("h2", "deployed", live, new)}
    assert summary_title(RolloutReport("p", "web", new, deployed)) == f"web -> {new}"


def test_a_table_at_80_columns_in_a_pipe_cuts_no_release_id():
    """Rich ends a value too long for its column with "…" (ids were cut to "20261129…"):
    here it wraps."""
    import io

    from rich.console import Console

    from backstage.tasks.reports import id_table

    release, previous = "20261129T101500123Z-9f2c4e1a", "20261128T091500123Z-8e2c4e1a"
    table = id_table("time", "host", "event", "act", "release", "previous", "by")
    table.add_row("2026-11-29T10:15:00.123456+00:00", "web1.example.com", "deploy", "storefront",
                  release, previous, "ada@workstation.example.com")
    out = io.StringIO()
    Console(file=out, width=80).print(table)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in out.getvalue()
    rows = [line.split("│") for line in lines if line.startswith("│")]
    assert "".join(row[5].strip() for row in rows) == release
    assert "".join(row[6].strip() for row in rows) == previous


def backstage(*words: str):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "backstage", *words], text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("task", ["deploy-act", "status", "unlock", "rollback"])
def test_help_after_a_task_is_its_help(task):
    """``deploy-act --help`` once answered "unknown task ''" (an empty act was added for
    ``--all`` after the help was moved first)."""
    done = backstage(task, "--help")
    assert done.returncode == 0, done.stderr
    assert f"backstage [--core-opts] {task} [--options]" in done.stdout


def test_invoke_core_options_that_do_not_apply_are_neither_listed_nor_accepted():
    shown = backstage("--help")
    assert shown.returncode == 0 and "--list" in shown.stdout and "--version" in shown.stdout
    for option in ("--pty", "--hide", "--dry", "--prompt-for-sudo-password", "--echo",
                   "--warn-only", "--command-timeout", "--config", "--write-pyc"):
        assert option not in shown.stdout
    refused = backstage("--pty", "status")
    assert (refused.returncode, refused.stderr) == (2, "backstage: error: unknown option --pty\n")
