"""The repository's top level: ``fab --list`` and ``inv --list`` at its root, ``backstage --list``
anywhere, and ``tasks/`` and ``templates/`` shipped inside the installed package (pyproject.toml
maps them to ``backstage.tasks`` and ``backstage/templates``)."""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from backstage.tasks import ns

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The project's chores in tasks.py, for inv.
CHORES = ["bench", "lint", "test"]


def listing(program: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(BIN / program), "--list"], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def listed(text: str) -> dict[str, str]:
    """Task name -> the start of its help, from an Invoke task listing."""
    rows = [line.split(maxsplit=1) for line in text.splitlines() if line.startswith("  ")
            and not line.startswith("   ")]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_fab_and_backstage_list_every_task_with_help_and_inv_lists_the_chores(tmp_path):
    fab = listed(listing("fab", REPO))
    assert set(fab) == set(ns.task_names)
    assert {"deploy-act", "rollback", "setup-stage", "status"} <= set(fab)
    assert all(fab.values()), f"tasks without a help line: {[t for t, h in fab.items() if not h]}"
    assert listed(listing("backstage", tmp_path)) == fab  # anywhere, not only in the repository
    chores = listed(listing("inv", REPO))
    assert sorted(chores) == CHORES and all(chores.values())


def test_pyproject_lists_every_package_folder():
    """An unlisted package would be missing from the installed package (a wheel), while an
    editable install still finds it: so the list is checked here."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"backstage": REPO / "backstage", **{name: REPO / folder for name, folder
                                                    in config["package-dir"].items()}}
    found = {".".join(("backstage", *init.parent.relative_to(REPO / "backstage").parts))
             for init in (REPO / "backstage").rglob("__init__.py")}
    packages, wanted = set(config["packages"]), found | set(folders)
    assert packages == wanted, (f"pyproject.toml's packages lack {sorted(wanted - packages)}, "
                                f"list {sorted(packages - wanted)} that are no folder")
    assert all(folder.is_dir() for folder in folders.values())


def test_a_built_wheel_ships_the_tasks_and_templates_and_runs_from_anywhere(tmp_path):
    """``pip install .`` as a user runs it (not editable), into a folder of its own: the task
    modules and every template are inside, and ``backstage --list`` works with only them."""
    source = tmp_path / "source"
    for folder in ("backstage", "tasks", "templates"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("backstage-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"backstage/templates/{p.relative_to(REPO / 'templates')}"
                 for p in (REPO / "templates").rglob("*") if p.is_file()}
    assert templates and templates <= shipped, sorted(templates - shipped)
    assert {f"backstage/tasks/{p.name}" for p in (REPO / "tasks").glob("*.py")} <= shipped

    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}  # before the editable checkout on the path
    code = ("import backstage.render as r, backstage.tasks as t;"
            "print(t.__file__, r.default_templates())")
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, text=True,
                           capture_output=True, check=True).stdout.split()
    assert where == [str(target / "backstage" / "tasks" / "__init__.py"),
                     str(target / "backstage" / "templates")]
    done = subprocess.run([sys.executable, "-m", "backstage", "--list"], cwd=tmp_path, env=env,
                          text=True, capture_output=True, timeout=120, check=True)
    assert set(listed(done.stdout)) == set(ns.task_names)
