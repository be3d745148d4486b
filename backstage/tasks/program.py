"""The ``backstage`` console script: an Invoke program over the same tasks as ``fab``."""

from invoke import Program

from backstage import __version__
from backstage.tasks import ns

program = Program(namespace=ns, name="Backstage", binary="backstage", version=__version__)


def main():
    program.run()
