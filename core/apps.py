from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure that imports no domain app: bulk writes, chunked jobs,
    paginators, admin mixins, export helpers."""

    name = "core"
    verbose_name = "Jobs"

    def ready(self):
        from core import folding  # noqa: F401 (the `folded` lookup; SQLite's function)
