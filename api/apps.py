from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The integration API for tills, web shops and apps (DESIGN.md, Integration API)."""

    name = "api"
    verbose_name = "Integration API"

    def ready(self):
        from api.tasks import forget_erased
        from members.signals import member_erased

        member_erased.connect(forget_erased, dispatch_uid="api.forget_erased")
