import logging

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone

from core.admin import (
    ConfirmedPolicyAdmin,
    ReadOnlyAdminMixin,
    WritesWhatChangedAdmin,
    reposted,
    with_separators,
)
from core.kept import KeptWhileNamedAdmin
from tiers.degradation_previews import degradation_impact, degradation_skipped
from tiers.models import DegradationPolicy, ProgrammeVersion, StatusGrant, Tier
from tiers.selectors import (
    Ranking,
    lock_tiers,
    steps_due_tonight,
    what_keeps,
)
from tiers.tasks import recalculate_all_tiers_task
from tiers.threshold_changes import threshold_change_preview

log = logging.getLogger(__name__)
CONFIRM = "_confirm_threshold"
SKIPPED_ROWS = 50  # members a preview lists as skipped (a status match, a freeze)


@admin.register(Tier)
class TierAdmin(KeptWhileNamedAdmin, WritesWhatChangedAdmin):
    list_display = [
        "name",
        "code",
        "threshold_shown",
        "multiplier",
        "points_expire",
        "bonus_shown",
    ]
    ordering = ["threshold"]
    prepopulated_fields = {"code": ["name"]}

    threshold_shown = with_separators("threshold", "Threshold")
    bonus_shown = with_separators("upgrade_bonus_points", "Tier-up bonus points")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """T3: a new threshold is shown with how many members it moves before it is saved."""
        tier = self.get_object(request, unquote(object_id)) if object_id else None
        allowed = (
            self.has_change_permission(request, tier) if tier else self.has_add_permission(request)
        )
        if request.method != "POST" or not allowed:
            return super().changeform_view(request, object_id, form_url, extra_context)
        # A confirmation holds for the programme it was shown against: changed by someone
        # in between, the moves shown are not those that would happen. Compared again
        # and saved under the tiers' lock: two marketers confirming at once are one
        # after the other, and the second is shown the moves again.
        if preview := self._preview_unless_confirmed(request, tier):
            return preview
        with transaction.atomic():
            lock_tiers()
            if preview := self._preview_unless_confirmed(request, tier):
                return preview
            return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview_unless_confirmed(self, request, tier):
        """The preview of a new threshold (or a new tier) not confirmed against the
        programme as it is now; None when confirmed, or when no threshold changes."""
        confirmed = request.POST.get(CONFIRM)
        if confirmed == str(ProgrammeVersion.current_token()):
            return None
        was = tier.threshold if tier else None
        form = self.get_form(request, tier, change=tier is not None)(
            request.POST, request.FILES, instance=tier
        )
        if form.is_valid() and (tier is None or "threshold" in form.changed_data):
            return self._threshold_preview(request, form.instance, was, again=bool(confirmed))
        return None

    def _threshold_preview(self, request, tier, was, *, again=False):
        context = {
            **self.admin_site.each_context(request),
            "title": "Confirm the new threshold",
            "opts": self.opts,
            "tier": tier,
            "was": was,
            "moves": threshold_change_preview(tier, tier.threshold),
            "posted": reposted(request, CONFIRM),
            "confirm": CONFIRM,
            "programme": _programme_shown(),
            "changed_meanwhile": again,
        }
        return TemplateResponse(request, "admin/tiers/tier/threshold_preview.html", context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "threshold" in form.changed_data or not change:
            self._recalculate(request)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self._recalculate(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.threshold == 0)

    def what_keeps(self, tier):
        return what_keeps(tier)  # the campaigns limited to it, too

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _recalculate(self, request):
        """T3: requalify every member in the background once the change is saved. With
        the task queue out of reach, the change stays saved and the nightly
        requalification (a beat row) moves the members."""

        def queue():
            try:
                recalculate_all_tiers_task.delay()
            except Exception:  # whatever the broker raises when it cannot be reached
                log.exception("The tier recalculation could not be queued")
                self.message_user(
                    request,
                    "The task queue could not be reached: members will be requalified "
                    "under the new thresholds tonight.",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    "Members are being requalified under the new thresholds.",
                    messages.INFO,
                )

        transaction.on_commit(queue)


SOON_DAYS = 14  # the window of the dashboard's "at risk" list


def _programme_shown() -> str:
    """The programme's version, as a confirmation page carries it."""
    return str(ProgrammeVersion.current_token() or "")


@admin.register(DegradationPolicy)
class DegradationPolicyAdmin(ConfirmedPolicyAdmin):
    """D1: a marketer switches degradation on and sets its pace, seeing first who it
    would move."""

    confirm_template = "admin/tiers/degradationpolicy/confirm.html"

    def needs_confirmation(self, policy, saved) -> bool:
        # Switching off, or saving the pace as it was, moves nobody: saved at once.
        pace = ("enabled", "inactivity_days", "levels_per_step")
        return policy.enabled and any(getattr(policy, f) != getattr(saved, f) for f in pace)

    def impact(self, request, policy, saved) -> dict:
        # "Now": tonight's run drops whom the member pages say drop "at tonight's run".
        now, ranking = timezone.now(), Ranking()
        moves = degradation_impact(policy, ranking, now, days=SOON_DAYS)
        # Members (and why they are frozen) are listed to staff who may view members.
        rows = SKIPPED_ROWS if request.user.has_perm("members.view_member") else 0
        tonight = steps_due_tonight(now)
        skipped_count, skipped = degradation_skipped(policy, ranking, tonight, limit=rows)
        return {
            "skipped_count": skipped_count,
            "skipped": skipped,
            "moves": moves,
            "days": SOON_DAYS,
            "total_now": sum(move["now"] for move in moves),
            "total_soon": sum(move["soon"] for move in moves),
        }


@admin.register(StatusGrant)
class StatusGrantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Status matches, granted on the member page (tiers.services.grant_status)."""

    list_display = [
        "member",
        "tier",
        "until",
        "granted_by",
        "granted_at",
        "ended_at",
        "end",
        "ended_by",
        "end_reason",
    ]
    list_select_related = ["member", "tier", "granted_by", "ended_by"]
    list_filter = ["tier", "end"]
    search_fields = ["member__external_id__istartswith"]
