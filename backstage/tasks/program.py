"""The ``backstage`` console script: an Invoke program over the same tasks as ``fab``."""

import sys

from invoke import Program

from backstage import __version__
from backstage.tasks import ns

program = Program(namespace=ns, name="Backstage", binary="backstage", version=__version__)


def help_first(argv: list[str]) -> list[str]:
    """``backstage TASK --help`` -> ``backstage --help TASK``.

    Invoke would otherwise take ``--help`` as the value of a task's positional argument
    (``deploy-act --help`` would deploy an act named "--help").
    """
    words = argv[1:]
    tasks = [w for w in words if w in ns.task_names or w in ns.tasks]
    if tasks and any(w in ("--help", "-h") for w in words[words.index(tasks[0]):]):
        return [argv[0], "--help", tasks[0]]
    return argv


def main():
    program.run(help_first(sys.argv))
