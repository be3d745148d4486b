"""The ``backstage`` program, plus each host's transport counts printed on stderr at exit.

``python bench/counted_cli.py <task> [args]`` runs exactly what ``python -m backstage`` runs
(same imports, same tasks), and at exit prints ``<host>  N remote commands, X KiB sent`` per
host, as ``--verbose`` does for the operations whose reporter prints totals. Not every task's
code path does (the phased ``deploy-act`` rollout fills ``Options.stats`` without printing
it), so the benchmarks read the counts from here for every task alike. The lines come from
the very ``Options`` objects the tasks' ``Production`` built, so nothing is estimated.
"""

import atexit
import sys

from backstage.production import Production
from backstage.tasks.program import main

built = []
original = Production._options


def counting_options(self, *args, **kwargs):
    options = original(self, *args, **kwargs)
    built.append(options)
    return options


@atexit.register
def print_counts():
    for options in built:
        for host, counts in options.stats.items():
            print(f"{host}  {counts['commands']} remote commands, "
                  f"{counts['bytes'] / 1024:.1f} KiB sent", file=sys.stderr)


Production._options = counting_options
main()
