"""Requirements as projects keep them: uv, Poetry and Pipenv locks and pyproject.toml, read
as requirements files without their development groups (backstage.artefacts.lockfiles)."""

import json
from pathlib import Path

import pytest

from backstage.artefacts import lockfiles, requirements
from backstage.errors import InventoryError

TICKETS = Path(__file__).parent / "strangers" / "tickets"
DJANGO_HASH = "f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db"


def names(text: str) -> list[str]:
    return sorted(line.split("==")[0] for line in text.splitlines()
                  if line and not line.startswith((" ", "#")))


def test_a_uv_lock_ships_its_runtime_packages_without_the_dev_group():
    exported = lockfiles.export(TICKETS / "uv.lock")
    assert names(exported.text) == ["asgiref", "django", "sqlparse", "tzdata"]
    assert f"--hash=sha256:{DJANGO_HASH}" in exported.text
    assert "tzdata==2026.4 ; sys_platform == 'win32'" in exported.text  # pip skips it here
    assert exported.sources == (TICKETS / "uv.lock", TICKETS / "pyproject.toml")


def test_a_pyproject_beside_a_lock_is_read_through_the_lock():
    assert lockfiles.export(TICKETS / "pyproject.toml") == lockfiles.export(TICKETS / "uv.lock")


def test_the_wheels_of_a_uv_lock_are_its_runtime_packages_only():
    resolved = requirements.resolve(TICKETS / "pyproject.toml")
    assert names(resolved.text) == ["asgiref", "django", "sqlparse"]
    assert f"django==5.2.17 --hash=sha256:{DJANGO_HASH}\n" in resolved.text


POETRY_2 = """
[[package]]
name = "django"
version = "5.2.17"
groups = ["main"]
markers = {main = "python_version >= '3.10'"}
files = [{file = "django-5.2.17-py3-none-any.whl", hash = "sha256:HASH"}]

[[package]]
name = "mypy"
version = "1.15.0"
groups = ["dev"]
files = []

[[package]]
name = "argon2-cffi"
version = "23.1.0"
groups = ["main"]
optional = true
files = []
""".replace("HASH", DJANGO_HASH)

POETRY_1 = """
[[package]]
name = "sqlparse"
version = "0.6.0"
category = "main"
optional = false

[[package]]
name = "pytest"
version = "8.3.0"
category = "dev"
optional = false
"""


@pytest.mark.parametrize("text, expected", [
    (POETRY_2, f"django==5.2.17 ; python_version >= '3.10' --hash=sha256:{DJANGO_HASH}\n"),
    (POETRY_1, "sqlparse==0.6.0\n"),
])
def test_a_poetry_lock_ships_its_main_group_only(tmp_path, text, expected):
    (tmp_path / "poetry.lock").write_text(text)
    (tmp_path / "pyproject.toml").write_text("[tool.poetry]\nname = 'x'\n")
    assert lockfiles.export(tmp_path / "pyproject.toml").text == expected


def test_a_pipfile_lock_ships_default_never_develop(tmp_path):
    (tmp_path / "Pipfile.lock").write_text(json.dumps({
        "_meta": {},
        "default": {"django": {"version": "==5.2.17", "hashes": [f"sha256:{DJANGO_HASH}"],
                               "markers": "python_version >= '3.10'"}},
        "develop": {"pytest": {"version": "==8.3.0", "hashes": []}},
    }))
    exported = lockfiles.export(tmp_path / "Pipfile.lock")
    assert exported.text == (f"django==5.2.17 ; python_version >= '3.10' "
                             f"--hash=sha256:{DJANGO_HASH}\n")


def test_a_pyproject_alone_ships_its_dependencies_not_its_groups(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["django>=5.2,<5.3", "sqlparse"]\n'
        '[dependency-groups]\ndev = ["pytest"]\n')
    assert lockfiles.export(tmp_path / "pyproject.toml").text == "django>=5.2,<5.3\nsqlparse\n"


def test_a_plain_requirements_file_is_no_lockfile(tmp_path):
    assert lockfiles.export(tmp_path / "requirements.txt") is None


@pytest.mark.parametrize("name, text, reason", [
    ("poetry.lock", "[[package]\n", "invalid TOML"),
    ("Pipfile.lock", "{", "not a Pipfile.lock"),
    ("Pipfile.lock", '{"default": {"x": {"path": "."}}}', "only pinned versions"),
    ("pyproject.toml", "[project]\nname = 'x'\n", "a list of requirements is needed"),
    ("uv.lock", "version = 1\n", "uv export failed"),
])
def test_a_bad_lockfile_is_one_line_naming_it(tmp_path, name, text, reason):
    (tmp_path / name).write_text(text)
    with pytest.raises(InventoryError) as caught:
        lockfiles.export(tmp_path / name)
    message = str(caught.value)
    assert str(tmp_path / name) in message and reason in message and "\n" not in message
