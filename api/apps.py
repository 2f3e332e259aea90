from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The integration API for tills, web shops and apps (DESIGN.md, Integration API)."""

    name = "api"
    verbose_name = "Integration API"

    def ready(self):
        from api.services import codes_erased
        from api.tasks import forget_erased
        from members.signals import member_codes_erased, member_erased

        member_codes_erased.connect(codes_erased, dispatch_uid="api.codes_erased")
        member_erased.connect(forget_erased, dispatch_uid="api.forget_erased")
