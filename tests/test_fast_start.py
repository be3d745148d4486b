"""The ``backstage`` program starts without loading what only its tasks need (issue 18).

``backstage --help``, a usage error or ``check`` must not pay for pydantic, Fabric/paramiko,
rich, Jinja2 or the deploy stack: a task imports them when it runs. The time it takes is a
benchmark's business (``python -X importtime``); this test pins what is imported.
"""

import json
import subprocess
import sys

HEAVY = ("pydantic", "fabric", "paramiko", "rich", "jinja2", "backstage.production",
         "backstage.model.inventory", "backstage.engine", "backstage.transport")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_program_loads_no_task_dependency():
    assert heavy(loaded_after("import backstage.tasks.program")) == []


def test_help_loads_no_task_dependency():
    code = ("import sys\nfrom backstage.tasks.program import main\nsys.argv = ['backstage', "
            "'--help']\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert heavy(loaded_after(code)) == []


def test_a_task_still_gets_what_it_needs(tmp_path):
    """``check`` loads the inventory (pydantic) when it runs, and says what it found."""
    inventory = tmp_path / "p.toml"
    inventory.write_text('[hosts.h1]\nroles = ["web"]\n')
    done = subprocess.run([sys.executable, "-m", "backstage", "check", "--inventory",
                           str(inventory)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "is valid: 1 hosts" in done.stdout
