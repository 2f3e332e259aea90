"""Goodwill limits and the requests above them (governance of manual points): the
models, imported by points.models. The rules are in points.services.goodwill."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.staff_input import AtLeastOne, AtMost, adjustment_limit
from core.words import counted

MAX_PER_MONTH = 1_000_000_000  # points one user may give in a month: beyond any sense


class AdjustmentLimit(models.Model):
    """What the members of one staff group may give by hand on their own (positive
    adjustments and point grants): per adjustment, and in total per calendar month in
    the programme's time zone. Above it, an adjustment becomes a request."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="adjustment_limit"
    )
    per_adjustment = AtLeastOne(
        help_text="The most points one adjustment (or one row of a grants file) may give.",
        # Above P6's own cap the limit would mean nothing: no adjustment gives that many.
        validators=[
            AtMost(
                adjustment_limit,
                "At most {limit:,}: no adjustment may give more points than that (P6).",
            )
        ],
    )
    per_month = AtLeastOne(
        help_text="The most points one user of the group may give in a calendar month.",
        validators=[AtMost(MAX_PER_MONTH, "At most {limit:,} points a month.")],
    )

    class Meta:
        ordering = ["group__name"]

    def __str__(self):
        return f"{self.group}: {self.per_adjustment:,} per adjustment, {self.per_month:,} a month"

    def clean(self):
        # Above the month's limit one adjustment is a request anyway: a limit that says
        # otherwise would mislead whoever reads it.
        # (Said once: a limit above any adjustment's is refused as that alone.)
        within = self.per_adjustment and self.per_adjustment <= adjustment_limit()
        if within and self.per_month and self.per_adjustment > self.per_month:
            raise ValidationError(
                {
                    "per_adjustment": f"At most the month's {self.per_month:,}: one "
                    "adjustment above it goes for approval anyway."
                }
            )


class AdjustmentRequest(models.Model):
    """An adjustment above its giver's limit, waiting for a CX supervisor (another
    user with points.approve_adjustment), who approves it (then applied through
    adjust_points, once) or rejects it, with a reason."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="adjustment_requests"
    )
    points = models.PositiveIntegerField()
    reason = models.CharField(max_length=255)
    definition = models.ForeignKey(
        "points.PointDefinition", on_delete=models.PROTECT, related_name="+"
    )
    # Why it needs approval, as the agent read it ("above your limit of ...").
    above = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=255, blank=True)
    # The ledger entry the approval wrote.
    entry = models.OneToOneField(
        "points.LedgerEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="request",
    )

    class Meta:
        # "Point requests", as the dashboard, the queue and the member page name them
        verbose_name = "point request"
        ordering = ["-requested_at", "-pk"]
        permissions = [("approve_adjustment", "Can approve or reject adjustments above a limit")]
        indexes = [
            # The queue: pending requests, oldest first.
            models.Index(
                fields=["requested_at"], condition=Q(status="pending"), name="request_pending"
            )
        ]

    def __str__(self):
        status = self.get_status_display()
        return (
            f"{counted(self.points, 'point', signed=True)} for {self.member.external_id} ({status})"
        )

    @property
    def decider(self) -> str:
        """Who decided it, as staff read it: "by sam", or "automatically" (a request
        rejected by its member's erasure)."""
        return f"by {self.decided_by}" if self.decided_by_id else "automatically"
