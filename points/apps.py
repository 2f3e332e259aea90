from django.apps import AppConfig


class PointsConfig(AppConfig):
    name = "points"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from points.models import Campaign, ExpiryPolicy, ExpiryRun, PointDefinition
        from tiers.models import ProgrammeVersion

        # The cached programme (points.selectors.programme) follows every change, and
        # every expiry run (the summaries' coming cutoff).
        for model in (Campaign, PointDefinition, ExpiryPolicy, ExpiryRun):
            for signal in (post_save, post_delete):
                signal.connect(
                    ProgrammeVersion.bump, sender=model, dispatch_uid=f"{model}-{signal}"
                )
        m2m_changed.connect(ProgrammeVersion.bump, sender=Campaign.tiers.through)
        # An erasure rejects the point requests still waiting for the accounts it erased.
        from members.signals import member_codes_erased
        from points.services.goodwill import reject_requests_of_erased

        member_codes_erased.connect(
            reject_requests_of_erased, dispatch_uid="points.reject_requests_of_erased"
        )
