from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure that imports no domain app: bulk writes, chunked jobs,
    paginators, admin mixins, export helpers."""

    name = "core"
    verbose_name = "Jobs"
