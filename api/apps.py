from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The integration API for tills, web shops and apps (DESIGN.md, Integration API)."""

    name = "api"
    verbose_name = "Integration API"
