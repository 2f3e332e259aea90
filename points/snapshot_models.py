"""The programme analytics' daily snapshots (points.services.snapshots): rows the job
works out from the ledger and the tier history, never edited by hand."""

from django.db import models
from django.utils import timezone

from tiers.models import Tier


class DailyPoints(models.Model):
    """The programme's points on one day (local days of TIME_ZONE), kept by the daily
    snapshot job (points.services.snapshots): what the day added to the ledger by kind,
    and what members held at its end. Redeemable points only: the points a member can
    spend, which the brand owes. Never edited by hand."""

    day = models.DateField(unique=True)
    # Issued: earned, bonuses (tier-up, actions, opening balances) and manual
    # adjustments (signed); the others are positive amounts taken off.
    issued = models.BigIntegerField(default=0)
    redeemed = models.BigIntegerField(default=0)  # redemptions less cancellations
    expired = models.BigIntegerField(default=0)
    returned = models.BigIntegerField(default=0)
    available = models.BigIntegerField(default=0)  # at the end of the day
    pending = models.BigIntegerField(default=0)
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "daily points"
        permissions = [("view_analytics", "Can see the programme analytics")]

    def __str__(self):
        return f"{self.day}: {self.available:,} available, {self.pending:,} pending"


class DailyTier(models.Model):
    """Members by effective tier at the end of one day (the snapshot job's)."""

    day = models.DateField()
    # A tier anyone was ever in is kept by their tier history; one nobody ever held has
    # only rows of 0 here, which go with it.
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="+")
    members = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "tier__threshold"]
        constraints = [
            models.UniqueConstraint(fields=["day", "tier"], name="one_count_per_day_and_tier")
        ]

    def __str__(self):
        return f"{self.day}: {self.members:,} in tier {self.tier_id}"


class CampaignResult(models.Model):
    """What a campaign did, to the end of the last day taken (the snapshot job's): the
    points its multiplier added to purchases (LedgerEntry.campaign_points) and the
    members and purchases it reached. Kept for every campaign whose window met the
    days taken, switched off or not: the analytics list those that ran
    (analytics.campaign_results)."""

    campaign = models.OneToOneField(
        "points.Campaign", on_delete=models.CASCADE, primary_key=True, related_name="result"
    )
    extra_points = models.BigIntegerField(default=0)
    members = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    # The first purchase earned under it: the job reads its points from there, even
    # after its dates moved later.
    first_earned_at = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Campaign {self.campaign_id}: {self.extra_points:,} points to {self.members:,}"
