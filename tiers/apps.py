from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "tiers"
    default_auto_field = "django.db.models.BigAutoField"
