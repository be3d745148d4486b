"""Backstage: deploy Django acts to servers you run, as uWSGI Emperor vassals behind nginx.

The package is layered as ``shared/DESIGN.md`` describes, one sub-package per layer:

- :mod:`backstage.model` -- the inventory of a production, validated into plain objects;
- :mod:`backstage.render` -- Jinja2 templates for vassals, nginx and the Emperor;
- :mod:`backstage.plan` -- what must change on a host, from desired and observed state;
- :mod:`backstage.commands` -- the only place remote shell text is built;
- :mod:`backstage.transport` -- runs command text on a host (SSH or local), counting it;
- :mod:`backstage.rollout` -- runs plans on the hosts of a production;
- :mod:`backstage.tasks` -- the Fabric/Invoke tasks and the ``backstage`` program.

:mod:`backstage.artefacts` builds what is shipped (release tarballs, wheelhouses) on the
workstation, and :mod:`backstage.sandbox` starts throwaway hosts for the demo and the tests.
"""

__version__ = "0.1.0"
