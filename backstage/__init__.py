"""Backstage: deploy Django acts to servers you run, as uWSGI Emperor vassals behind nginx.

The Python API is :class:`backstage.Production` (:mod:`backstage.production`): load an
inventory, then ``deploy``, ``plan``, ``rollback``, ``status``... as the tasks do. The
package is layered, one sub-package per layer:

- :mod:`backstage.model` -- the inventory of a production, validated into plain objects;
- :mod:`backstage.render` -- Jinja2 templates for vassals, nginx and the Emperor;
- :mod:`backstage.remote` -- the programs that run on a host (standard library only);
- :mod:`backstage.commands` -- the only place remote shell text is built;
- :mod:`backstage.transport` -- runs command text on a host (SSH or local), counting it;
- :mod:`backstage.facts` -- what a host's probe says, typed;
- :mod:`backstage.operations` -- one module per operation: a plan from model and facts;
- :mod:`backstage.engine` -- runs the plans on the hosts of a production;
- :mod:`backstage.production` -- the Python API over them;
- :mod:`backstage.tasks` -- the Fabric/Invoke tasks and the ``backstage`` program, built on it.

:mod:`backstage.artefacts` builds what is shipped (release tarballs, wheelhouses) on the
workstation, :mod:`backstage.venues` (``backstage.shortcuts``) is the venue API, and
:mod:`backstage.sandbox` starts throwaway hosts for the demo and the tests.
"""

__version__ = "0.1.0"
__all__ = ["Production", "__version__"]


def __getattr__(name: str):
    """``from backstage import Production``, imported when asked for, so that importing a
    small part of the package (the sandbox, say) does not load the whole deploy stack."""
    if name == "Production":
        from backstage.production import Production

        return Production
    raise AttributeError(f"module 'backstage' has no attribute {name!r}")
