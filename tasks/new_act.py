"""The ``new-act`` task: scaffold an act into a repository and print its inventory entry.

A thin wrapper over :mod:`backstage.scaffold`, which the Python API shares
(``backstage.shortcuts.scaffold_act``/``inventory_entry``).
"""

from pathlib import Path

from invoke import Exit, task

from backstage.errors import BackstageError


@task(
    help={
        "name": "Name of the act (a-z, 0-9, '-'; it is the inventory's act, venue and gig name).",
        "path": "Folder to write the Django project into (default: ./NAME); missing or empty.",
        "secrets": "Secrets file to create with a new DJANGO_SECRET_KEY (default: "
                   "secrets/NAME.env); an existing one is kept.",
        "domain": "Domain of the printed gig (default: NAME.example.com).",
        "inventory-dir": "Folder of the inventory the printed paths are relative to "
                         "(default: inventories).",
    },
    auto_shortflags=False,
)
def new_act(c, name, path=None, secrets=None, domain=None, inventory_dir="inventories"):
    """Scaffold a Django act ready for deploy-act; print the inventory entry to add."""
    from backstage.scaffold import inventory_entry, scaffold_act  # jinja2: only when used

    target = Path(path or name)
    secrets_file = Path(secrets) if secrets else Path("secrets") / f"{name}.env"
    try:
        scaffold = scaffold_act(name, target, secrets_file)
        entry = inventory_entry(scaffold, target, secrets_file, domain, inventory_dir)
    except (ValueError, OSError, BackstageError) as exc:
        raise Exit(f"backstage: error: {exc}", code=2) from None
    print(f"# Act {name!r}: a Django project in {target}/ (settings {scaffold.settings}), its "
          f"secret key in {secrets_file} (keep that file out of version control).")
    print(f"# Add this to an inventory in {inventory_dir}/ (paths are relative to it), "
          f"next to its [hosts], then: backstage deploy-act {name}")
    print()
    print(entry, end="")
