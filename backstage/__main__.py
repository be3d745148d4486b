"""``python -m backstage`` is the ``backstage`` program."""

from backstage.tasks.program import main

main()
