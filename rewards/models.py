from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from members.models import Member
from points.models import LedgerEntry
from tiers.models import Tier


class Reward(models.Model):
    """An item of the catalogue (W1)."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    points_cost = models.PositiveIntegerField()
    min_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Lowest effective tier that may redeem it; empty for everyone.",
    )
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unlimited.")
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    image = models.ImageField(upload_to="rewards/", blank=True)

    class Meta:
        ordering = ["points_cost", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points_cost__gt=0),
                name="reward_cost_positive",
                violation_error_message="A reward costs at least 1 point.",
            ),
            models.CheckConstraint(
                condition=Q(available_from__isnull=True)
                | Q(available_until__isnull=True)
                | Q(available_until__gt=F("available_from")),
                name="reward_window_ends_after_start",
                violation_error_message="“Available until” must be after “Available from”.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.points_cost:,} points)"


class Redemption(models.Model):
    """A reward redeemed by a member; cancelling refunds it (W3, W4)."""

    class Status(models.TextChoices):
        REDEEMED = "redeemed", "Redeemed"
        CANCELLED = "cancelled", "Cancelled"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    # The caller's id of a redemption through the API (P8): the same id again finds it.
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    points = models.PositiveIntegerField(help_text="What it cost when redeemed.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REDEEMED)
    redeemed_at = models.DateTimeField(default=timezone.now)
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-redeemed_at", "-pk"]
        indexes = [models.Index(fields=["member", "-redeemed_at"])]
        permissions = [("cancel_redemption", "Can cancel a redemption and refund its points")]

    def __str__(self):
        return f"{self.reward.name} for {self.member.external_id}"
