"""Render a new act's Django project from the templates in ``templates/scaffold/``.

The scaffold templates are Python and Django template files, so they use their own Jinja2
delimiters (``[[ value ]]``, ``[% block %]``) and Django's ``{{ }}``/``{% %}`` pass through as
they are. The same files serve the Python API (``new_act``, into a venue) and the ``new-act``
task (into a repository, for ``deploy-act``).
"""

from dataclasses import dataclass

import jinja2

from backstage.render import default_templates, template_environment
from backstage.venues.names import act_name, module_name, slug

DJANGO_REQUIREMENT = "Django>=5.2,<5.3"

# Template (under templates/scaffold/) -> file in the project; {module} is the package.
MANIFEST = {
    "manage.py.j2": "manage.py",
    "requirements.txt.j2": "requirements.txt",
    "gitignore.j2": ".gitignore",
    "README.md.j2": "README.md",
    "package/__init__.py.j2": "{module}/__init__.py",
    "package/apps.py.j2": "{module}/apps.py",
    "package/settings.py.j2": "{module}/settings.py",
    "package/routers.py.j2": "{module}/routers.py",
    "package/models.py.j2": "{module}/models.py",
    "package/views.py.j2": "{module}/views.py",
    "package/urls.py.j2": "{module}/urls.py",
    "package/wsgi.py.j2": "{module}/wsgi.py",
    "package/migrations/__init__.py.j2": "{module}/migrations/__init__.py",
    "package/migrations/0001_initial.py.j2": "{module}/migrations/0001_initial.py",
    "package/templates/home.html.j2": "{module}/templates/{module}/home.html",
    "package/static/style.css.j2": "{module}/static/{module}/style.css",
}
EXECUTABLE = {"manage.py"}


@dataclass(frozen=True)
class Scaffold:
    """A rendered act: its files (relative path -> text) and what deploying it needs to know."""

    name: str
    module: str
    database: str
    files: dict[str, str]

    @property
    def settings(self) -> str:
        return f"{self.module}.settings"

    @property
    def wsgi(self) -> str:
        return f"{self.module}.wsgi:application"

    def mode(self, path: str) -> int:
        return 0o755 if path in EXECUTABLE else 0o644


def _environment() -> jinja2.Environment:
    # Other delimiters: the scaffold's own Django templates use {{ }} and {% %}.
    return template_environment(
        jinja2.FileSystemLoader(default_templates() / "scaffold"),
        variable_start_string="[[", variable_end_string="]]",
        block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]",
    )


def render_act(name: str) -> Scaffold:
    """The files of a new act called ``name`` (ValueError for a name the API refuses)."""
    act_name(name)
    module = module_name(name)
    context = {
        "name": name,
        "module": module,
        "database": slug(name),
        "config_class": "".join(part.capitalize() for part in module.split("_")) + "Config",
        "django_requirement": DJANGO_REQUIREMENT,
    }
    env = _environment()
    files = {
        target.format(module=module): env.get_template(template).render(**context)
        for template, target in MANIFEST.items()
    }
    return Scaffold(name, module, slug(name), files)
