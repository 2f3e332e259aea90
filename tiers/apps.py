from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "tiers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from members.signals import member_codes_erased
        from tiers.models import DegradationPolicy, ProgrammeVersion, Tier
        from tiers.services.status_match import rename_erased_codes

        # The cached programme (points.selectors.programme) follows every change.
        for model in (Tier, DegradationPolicy):
            for signal in (post_save, post_delete):
                signal.connect(
                    ProgrammeVersion.bump, sender=model, dispatch_uid=f"{model}-{signal}"
                )
        # An erasure renames the codes a status match carried over by a merge names.
        member_codes_erased.connect(rename_erased_codes, dispatch_uid="tiers.rename_erased_codes")
