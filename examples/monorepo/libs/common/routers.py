"""Route each Django app to the logical database it lives in (shared by every service).

A service has one Django ``DATABASES`` entry per logical database (``users``, ``greetings``,
...). Which app lives where is declared once, in settings::

    APP_DATABASES = {"people": "users", "greetings": "greetings"}

This router is generic: it knows nothing about the storefront beyond that mapping, so it can be
copied into any act. Apps missing from the mapping fall through to ``default`` (the dummy backend
here), so forgetting to map an app fails loudly rather than writing to the wrong database.
"""

from django.conf import settings


def database_for_app(app_label):
    """Return the database alias that holds ``app_label``'s tables (``None``: not mapped)."""
    return settings.APP_DATABASES.get(app_label)


class LogicalDatabaseRouter:
    def db_for_read(self, model, **hints):
        return database_for_app(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return database_for_app(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        """Foreign keys only between apps of one database (SQL cannot join across files)."""
        return database_for_app(obj1._meta.app_label) == database_for_app(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        """Create an app's tables in its own database and nowhere else."""
        return db == (database_for_app(app_label) or "default")
