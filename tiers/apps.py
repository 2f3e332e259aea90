from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "tiers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from tiers.models import DegradationPolicy, ProgrammeVersion, Tier

        # The cached programme (points.selectors.programme) follows every change.
        for model in (Tier, DegradationPolicy):
            for signal in (post_save, post_delete):
                signal.connect(
                    ProgrammeVersion.bump, sender=model, dispatch_uid=f"{model}-{signal}"
                )
