"""Shell text is made in one place: ``backstage/commands/`` (and the venue API's own
``backstage/venues/commands.py``); host-side programs live in ``backstage/remote/``.

Every other module of the package is read (not imported): it may put a command together only
through the builders (``Script``'s structured methods, the command modules' functions), never
by quoting values itself or writing shell syntax into a string.
"""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "backstage"
# The sandbox makes this machine's namespace hosts (for the demo and the tests): its scripts
# run here, as root, before any host exists, and are never sent to a host.
ALLOWED = ("backstage/commands/", "backstage/remote/", "backstage/venues/commands.py",
           "backstage/sandbox/")
# Quoting or raw text: the builders' own tools, and Script's escape hatches.
QUOTING = {"argv", "q", "quote", "raw", "run"}
# Shell syntax in a string: a pipe or list operator, a redirection, a compound command.
SHELL = re.compile(r"\|\||&&|\s[12]?>\s?/dev/null|;\s*(then|do|fi|done)\b|\$\(|\|\s*(tail|grep)\b")


def outside_commands() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not str(p.relative_to(REPO)).startswith(ALLOWED))


def shell_text(source: str) -> list[str]:
    """What in a module's source quotes values for a shell or writes shell syntax."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in QUOTING and not (name == "run" and not is_script_call(func)):
                found.append(f"line {node.lineno}: {name}(...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SHELL.search(node.value):
            found.append(f"line {node.lineno}: {node.value[:60]!r}")
    return found


def is_script_call(func: ast.expr) -> bool:
    """``script.run(...)`` or ``Script().run(...)``, not ``transport.run``/``subprocess.run``
    or a function of the module's own named ``run``."""
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value
    if isinstance(owner, ast.Call):
        owner = owner.func
    return getattr(owner, "id", getattr(owner, "attr", "")).lower().endswith("script")


@pytest.mark.parametrize("path", outside_commands(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_shell_text_outside_the_commands_layer(path):
    assert not shell_text(path.read_text(encoding="utf-8")), \
        f"{path.relative_to(REPO)} builds shell text: {shell_text(path.read_text())}"


@pytest.mark.parametrize("snippet", [
    'text = argv("tail", "-n", "5", path)',
    'script.raw("echo hi")',
    'Script().run("rm", "-f", path)',
    'command = f"tail -n {n} {path} 2>/dev/null || true"',
    'command = "if [ -e x ]; then rm x; fi"',
])
def test_the_check_finds_shell_text(snippet):
    assert shell_text(snippet)


def test_the_check_lets_transports_and_subprocesses_run():
    assert not shell_text("transport.run(command)\nsubprocess.run(['ls'], check=True)\n")
