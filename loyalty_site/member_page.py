"""The CX Manager's member page: everything an agent needs while the customer waits,
and the two things an agent does there, assigning points and redeeming a reward."""

import uuid

from django import forms
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.utils import timezone

from loyalty_site.models import FormSubmission
from points.models import MANUAL_ADJUSTMENT, TIER_UP_BONUS, LedgerEntry, PointDefinition
from points.selectors import pending_points
from rewards.models import Redemption
from rewards.selectors import catalogue
from tiers.models import DegradationPolicy
from tiers.selectors import Ranking, next_degradation

LEDGER_PAGE_SIZE = 25
HISTORY_ROWS = 20


class OnceForm(forms.Form):
    """A staff form that changes points: it carries a one-time token (see `apply_once`)."""

    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", uuid.uuid4())
        super().__init__(*args, **kwargs)


class AssignPointsForm(OnceForm):
    points = forms.IntegerField(help_text="Negative to remove points.")
    definition = forms.ModelChoiceField(
        queryset=PointDefinition.objects.filter(
            is_active=True, kind__in=[PointDefinition.Kind.BONUS, PointDefinition.Kind.ACTION]
        ).exclude(handle=TIER_UP_BONUS),
        empty_label=None,
        help_text="Decides whether the points count toward the tier.",
    )
    reason = forms.CharField(
        max_length=255, error_messages={"required": "Say why the points are adjusted."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        manual = self.fields["definition"].queryset.filter(handle=MANUAL_ADJUSTMENT).first()
        self.fields["definition"].initial = manual


class RedeemForm(OnceForm):
    reward = forms.IntegerField(widget=forms.HiddenInput)


def apply_once(token: uuid.UUID, change) -> bool:
    """Run `change()` unless a form with this token was already applied; False then.

    The token is written in the change's own transaction: if the change fails, the
    token goes with it and the agent can correct the form and send it again. Two
    posts at once: the second waits on the first's insert and then finds the token."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                FormSubmission.objects.create(token=token)
        except IntegrityError:
            return False
        change()
    return True


def member_context(request, member, *, assign_form=None, now=None) -> dict:
    """The member page's panels, a fixed number of queries whatever the member's
    history: balances, tiers and progress, degradation, catalogue, history, ledger."""
    now = now or timezone.now()
    ranking = Ranking()
    pending = pending_points(member, now=now)
    qualified = ranking.by_pk[member.qualified_tier_id]
    effective = ranking.by_pk[member.effective_tier_id]
    next_tier = ranking.next_above(qualified.pk)
    progress = None
    if next_tier:
        span = next_tier.threshold - qualified.threshold
        progress = {
            "tier": next_tier,
            "to_go": next_tier.threshold - member.lifetime_points,
            "percent": round(100 * (member.lifetime_points - qualified.threshold) / span, 1),
        }
    policy = DegradationPolicy.current()
    ledger = LedgerEntry.objects.filter(member=member).select_related("definition", "created_by")
    user = request.user
    return {
        "member": member,
        "available": member.points_balance - pending,
        "pending": pending,
        "qualified": qualified,
        "effective": effective,
        "progress": progress,
        "degradation_enabled": policy.enabled,
        "next_degradation": next_degradation(member, policy, ranking, now),
        "catalogue": catalogue(member, now=now),
        "tier_history": member.tier_changes.select_related(
            "from_tier", "to_tier", "qualified_tier", "created_by"
        )[:HISTORY_ROWS],
        "ledger_page": Paginator(ledger, LEDGER_PAGE_SIZE).get_page(request.GET.get("ledger")),
        "redemptions": Redemption.objects.filter(member=member).select_related(
            "reward", "redeemed_by"
        )[:HISTORY_ROWS],
        "assign_form": (assign_form or AssignPointsForm())
        if user.has_perm("points.assign_points")
        else None,
        "redeem_form": RedeemForm() if user.has_perm("rewards.add_redemption") else None,
    }
