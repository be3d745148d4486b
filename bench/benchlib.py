"""Helpers shared by the benchmark scripts: timed CLI runs, their counts, fresh hosts, tables.

A benchmark runs the ``backstage`` program as a user would (a subprocess, ``--verbose``) and
reports the wall time a user sees, CLI start included. It runs it through ``counted_cli.py``,
which is the same program plus, at exit, ``<host>  N remote commands, X KiB sent`` per host
(the transport's counts: command text plus bytes on stdin); :func:`timed` reads those lines
back, and the steps each host ran with their seconds.
"""

import datetime
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The scripts run as ``python bench/<name>.py``: put the repository on the path for the test
# support they share with the tests (tests/support/testbed.py: fleets, stages, load).
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backstage.sandbox.fleet import Fleet
from tests.support.testbed import Stage

COUNTED_CLI = Path(__file__).resolve().parent / "counted_cli.py"

TOTALS = re.compile(r"^(\S+)\s+(\d+) remote commands, ([0-9.]+) KiB sent$", re.MULTILINE)
STEP_DONE = re.compile(r"^(\S+)\s+(\S+)\s+ok (\d+\.\d+)s$", re.MULTILINE)


@dataclass
class Run:
    """One timed run of the program: wall seconds, and per host its counts and steps."""

    seconds: float
    cpu: float = 0.0  # CPU seconds of the program and its children (the SSH proxy commands)
    commands: dict[str, int] = field(default_factory=dict)
    kib: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[str]] = field(default_factory=dict)
    step_seconds: dict[str, list[float]] = field(default_factory=dict)


def timed(stage: Stage, *args: str) -> Run:
    """Run ``backstage <args> --verbose`` (must succeed); time it and parse its counts."""
    command = [sys.executable, str(COUNTED_CLI), *args, "--verbose",
               "--inventory", str(stage.inventory)]
    started, used = time.monotonic(), children_cpu()
    done = subprocess.run(command, cwd=stage.work, text=True, capture_output=True, timeout=900,
                          check=False)
    run = Run(time.monotonic() - started, children_cpu() - used)
    if done.returncode != 0:
        raise AssertionError(f"backstage {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    for host, commands, kib in TOTALS.findall(done.stderr):
        run.commands[host], run.kib[host] = int(commands), float(kib)
    for host, step, seconds in STEP_DONE.findall(done.stderr):
        if step != "probe":
            run.steps.setdefault(host, []).append(step)
        run.step_seconds.setdefault(step, []).append(float(seconds))
    if not run.commands:
        raise AssertionError(f"no per-host totals in the output of backstage {args}:\n"
                             f"{done.stderr}")
    return run


def children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(values) -> float:
    return statistics.median(values)


def per_host(runs: list[Run], what: str) -> str:
    """The median over runs of the per-host figure, hosts' spread shown when they differ."""
    values = [v for run in runs for v in getattr(run, what).values()]
    low, high = min(values), max(values)
    mid = median([median(list(getattr(run, what).values())) for run in runs])
    text = f"{mid:.0f}" if what == "commands" else f"{mid:.1f}"
    if low != high:
        text += f" ({low:g}-{high:g})"
    return text



def step_times(runs: list[Run]) -> str:
    """Median seconds of each step (probe included) over runs and hosts."""
    names = list(dict.fromkeys(step for run in runs for step in run.step_seconds))
    return ", ".join(
        f"{name} {median([s for run in runs for s in run.step_seconds.get(name, [])]):.2f}"
        for name in names)


def fresh_fleet(stage: Stage, names: list[str], prefix: str) -> None:
    """Replace the stage's fleet by brand-new hosts (new disks, keys, namespaces).

    The fleet's work dir and so the inventory's ssh_config path stay; the workstation's wheel
    cache is not touched.
    """
    stage.fleet.stop()
    shutil.rmtree(stage.work / "fleet" / "hosts", ignore_errors=True)
    stage.fleet = Fleet(stage.work / "fleet", prefix=prefix)
    stage.fleet.start(names)


def edit(stage: Stage, relative: str, old: str, new: str) -> None:
    path = stage.source / relative
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"{relative}: {old!r} not found")
    path.write_text(text.replace(old, new, 1))


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    """One line: CPUs, kernel, date, and the commit the benchmark ran."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "backstage"],
                           capture_output=True, text=True, check=False).stdout.strip()
    where = f"commit {commit}{' + uncommitted changes' if dirty else ''}" if commit else \
        f"source {REPO}"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"machine: {os.cpu_count()} CPUs (nproc), Linux {os.uname().release}; {now}; {where}"
