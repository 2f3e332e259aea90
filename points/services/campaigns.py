"""A marketer's campaign saved (P3): switched off, it ends then."""

from django.db import transaction
from django.utils import timezone

from points.models import Campaign


@transaction.atomic
def save_campaign(*, campaign: Campaign, fields: list[str] | None = None) -> None:
    """Save `campaign`: only `fields` when given (what the marketer changed on its page).
    Switched off, it ends then: `switched_off_at` keeps when, so that the purchases made
    while it ran still earn under it when they reach us later, from a till that was
    offline or a late file, as they would have on time (Campaign.applies_to). Switched on
    again, it runs its whole window again. The one place a campaign is switched on or
    off: a campaign saved switched off otherwise (the shell) counts as never having run."""
    campaign.full_clean()
    if fields is None or "is_active" in fields:
        if campaign.is_active:
            campaign.switched_off_at = None
        elif campaign.pk and Campaign.objects.filter(pk=campaign.pk, is_active=True).exists():
            campaign.switched_off_at = timezone.now()
        if fields is not None:
            fields = [*fields, "switched_off_at"]
    campaign.save(update_fields=fields)
