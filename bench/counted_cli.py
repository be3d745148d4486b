"""The ``backstage`` program, plus each host's transport counts printed on stderr at exit.

``python bench/counted_cli.py <task> [args]`` runs exactly what ``python -m backstage`` runs
(same imports, same tasks), and at exit prints ``<host>  N remote commands, X KiB sent`` per
host, as ``--verbose`` does for the operations whose reporter prints totals. Not every task's
code path does (the phased ``deploy-act`` rollout fills ``Options.stats`` without printing
it), so the benchmarks read the counts from here for every task alike. The lines come from
the very ``Options`` objects the tasks built, so nothing is estimated.
"""

import atexit
import importlib
import sys

from backstage.tasks.program import main

tasks = importlib.import_module("backstage.tasks.tasks")
built = []
original = tasks.options


def counting_options(*args, **kwargs):
    options = original(*args, **kwargs)
    built.append(options)
    return options


@atexit.register
def print_counts():
    for options in built:
        for host, counts in options.stats.items():
            print(f"{host}  {counts['commands']} remote commands, "
                  f"{counts['bytes'] / 1024:.1f} KiB sent", file=sys.stderr)


tasks.options = counting_options
main()
