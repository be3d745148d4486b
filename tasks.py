"""The project's own chores, for ``inv``: ``inv test``, ``inv lint``, ``inv bench``.

(Backstage's deploy tasks live in ``tasks/``, installed as ``backstage.tasks``; ``fab --list``
shows them.)
"""

from invoke import task


@task(help={"args": "Extra pytest arguments, e.g. '-k foundation -x'."})
def test(c, args=""):
    """Run the test suite (fleet tests need root)."""
    c.run(f".venv/bin/python -m pytest {args}", pty=True)


@task
def lint(c):
    """Check style and common mistakes with ruff."""
    c.run(".venv/bin/ruff check backstage tasks tests bench fabfile.py tasks.py", pty=True)


@task(help={"name": "Benchmark script under bench/ without .py (default: all)."})
def bench(c, name=""):
    """Run the benchmarks under bench/; each prints a table of figures."""
    from pathlib import Path

    scripts = [Path("bench") / f"{name}.py"] if name else sorted(Path("bench").glob("*.py"))
    for script in scripts:
        c.run(f".venv/bin/python {script}", pty=True)
