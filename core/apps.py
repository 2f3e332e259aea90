from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure that imports no domain app: bulk writes, chunked jobs,
    paginators, admin mixins, export helpers."""

    name = "core"
    verbose_name = "Jobs"

    def ready(self):
        # The `folded` lookup and SQLite's function; each PostgreSQL session's settings.
        from core import db, folding  # noqa: F401
