"""The repository's top level: ``fab --list`` and ``inv --list`` at its root, ``backstage --list``
anywhere, and ``tasks/`` and ``templates/`` shipped inside the installed package (pyproject.toml
maps them to ``backstage.tasks`` and ``backstage/templates``)."""

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The distribution as ``pip wheel .`` builds it from a copy of the repository's files."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for folder in ("backstage", "tasks", "templates"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300)
    [built] = wheels.glob("backstage_deploy-*.whl")  # PyPI's "backstage" is another project
    return built


def test_a_built_wheel_ships_the_tasks_and_templates_and_runs_from_anywhere(tmp_path, wheel):
    """``pip install .`` as a user runs it (not editable), into a folder of its own: the task
    modules and every template are inside, and ``backstage --list`` works with only them."""
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"backstage/templates/{p.relative_to(REPO / 'templates')}"
                 for p in (REPO / "templates").rglob("*") if p.is_file()}
    assert templates and templates <= shipped, sorted(templates - shipped)
    assert {f"backstage/tasks/{p.name}" for p in (REPO / "tasks").glob("*.py")} <= shipped
    assert "backstage/rollout.schema.json" in shipped

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


def as_nobody(*argv: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run a command as ``nobody`` with a clean environment: no root, no system packages."""
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           *env, *argv], cwd=cwd, text=True, capture_output=True, timeout=600,
                          check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user")
def test_a_user_without_root_installs_the_wheel_in_a_fresh_virtualenv_and_checks(wheel):
    """Issue 14: a workstation install needs no root and no apt. ``nobody`` makes a virtualenv
    with the system's Python, installs the wheel from it and the dependencies' wheels
    (``scripts/setup-machine test`` fetched them: the test itself reaches no index), and runs
    ``backstage --help`` and ``backstage check`` on a copy of the sandbox inventory."""
    deps = Path(os.environ.get("BACKSTAGE_FLEET_CACHE") or "/var/cache/backstage-fleet")
    deps = deps / "workstation-wheels"
    assert any(deps.glob("*.whl")), f"{deps}: no wheels; run scripts/setup-machine test"
    home = Path(tempfile.mkdtemp(prefix="bs-nobody-"))
    try:
        for folder in ("inventories", "examples/storefront"):
            shutil.copytree(REPO / folder, home / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        sandbox = home / ".backstage" / "sandbox"  # what `sandbox up` writes
        sandbox.mkdir(parents=True)
        (sandbox / "storefront.env").write_text("DJANGO_SECRET_KEY=x\n")
        (sandbox / "ssh_config").write_text("")
        shutil.copy2(wheel, home / wheel.name)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
        home.chmod(0o755)
        made = as_nobody("/usr/bin/python3", "-m", "venv", "venv", home=home, cwd=home)
        assert made.returncode == 0, made.stderr
        installed = as_nobody("venv/bin/pip", "install", "--quiet", "--no-index",
                              "--find-links", str(deps), wheel.name, home=home, cwd=home)
        assert installed.returncode == 0, installed.stderr
        helped = as_nobody("venv/bin/backstage", "--help", home=home, cwd=home)
        assert helped.returncode == 0 and "deploy-act" in helped.stdout, helped.stderr
        checked = as_nobody("venv/bin/backstage", "check", home=home, cwd=home)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "production 'sandbox' is valid" in checked.stdout
    finally:
        shutil.rmtree(home)
