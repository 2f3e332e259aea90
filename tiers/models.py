import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from core.days import MAX_DAYS
from core.staff_input import (
    Above,
    AtLeastOne,
    AtMost,
    BoundedDecimalField,
    adjustment_limit,
    tidy_name,
    unreadable_name,
)
from core.words import counted

# A tier's or a campaign's multiplier: x9,999.99 is a typing error, not a campaign, and
# multipliers multiply (P3): a few such would take a purchase's points past any column.
MAX_MULTIPLIER = Decimal(100)
AT_MOST_MAX_MULTIPLIER = AtMost(
    MAX_MULTIPLIER, "A multiplier is at most x{limit:,}: 2 doubles the points, 1.5 adds half."
)
MULTIPLIER_ABOVE_ZERO = "The multiplier must be above 0: 1 means no extra points, 2 doubles them."


class Multiplier(BoundedDecimalField):
    """A tier's or a campaign's multiplier (x0.01 to x100): "10000" is told "at most
    x100" (BoundedDecimalField)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 6)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("validators", [Above(0, MULTIPLIER_ABOVE_ZERO), AT_MOST_MAX_MULTIPLIER])
        super().__init__(*args, **kwargs)


# The highest threshold, and the largest opening balance a member migrating in may bring
# (points.member_rows.MAX_OPENING is this number): every tier can be reached by one. A
# billion lifetime points is no programme's tier but zeros too many, and the column's own
# limit (2,147,483,647 on PostgreSQL) would be a second, meaningless message.
MAX_THRESHOLD = 1_000_000_000


class ProgrammeQuerySet(models.QuerySet):
    """Bulk updates and deletes of configuration also refresh the programme version
    (saves and deletes of single rows do it through signals)."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        ProgrammeVersion.bump()
        return rows

    def delete(self):
        result = super().delete()
        ProgrammeVersion.bump()
        return result


class Tier(models.Model):
    """A level of the programme. Rank is the order by threshold (T1)."""

    name = models.CharField(max_length=60)
    code = models.SlugField(max_length=30, unique=True)
    threshold = models.PositiveIntegerField(
        unique=True,
        validators=[
            AtMost(
                MAX_THRESHOLD,
                "A threshold is at most {limit:,} lifetime points, the largest opening balance "
                "the members import brings in: a member migrating in can be placed in any tier.",
            )
        ],
        help_text="Lifetime points needed to qualify. Exactly one tier has 0.",
    )
    multiplier = Multiplier(default=1, help_text="Purchase points are multiplied by it.")
    points_expire = models.BooleanField(
        default=True, help_text="Untick to exempt members of this tier from points expiry."
    )
    upgrade_bonus_points = models.PositiveIntegerField(
        default=0,
        # Paid as one entry: no more than one adjustment may give (P6).
        validators=[
            AtMost(
                adjustment_limit,
                "A tier-up bonus is at most {limit:,} points, as much as one adjustment may give.",
            )
        ],
        help_text="Paid once when a member reaches this tier for the first time.",
        verbose_name="tier-up bonus points",  # the contract's upgrade_bonus_points
    )
    benefits = models.TextField(blank=True, help_text="One benefit per line, shown to staff.")

    objects = ProgrammeQuerySet.as_manager()

    class Meta:
        ordering = ["threshold"]
        constraints = [
            models.CheckConstraint(
                condition=Q(multiplier__gt=0),
                name="tier_multiplier_positive",
                violation_error_message=MULTIPLIER_ABOVE_ZERO,
            ),
            models.UniqueConstraint(
                Lower("code"),
                name="tier_code_unique_any_case",
                violation_error_message="Another tier has this code: codes are unique whatever "
                "their case.",
            ),
            models.UniqueConstraint(
                Lower("name"),
                name="tier_name_unique_any_case",
                violation_error_message="Another tier has this name: names are unique whatever "
                "their case.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def benefit_list(self) -> list[str]:
        return [line.strip() for line in self.benefits.splitlines() if line.strip()]

    def clean(self):
        self.name = tidy_name(self.name)
        errors = {}
        # A code is unique whatever its case: the brand's CRM and staff read "Gold" and
        # "gold" as one tier. The constraint (Meta) is the final judge.
        if self.code and (
            other := Tier.objects.exclude(pk=self.pk).filter(code__iexact=self.code).first()
        ):
            errors["code"] = (
                f"{other} has the code {other.code}: codes are unique whatever their case."
            )
        # So is a name: members are told it ("You have reached Gold") and staff pick tiers
        # by it; two that look the same, or one that shows nothing, name no tier.
        if name_error := self._name_error():
            errors["name"] = name_error
        try:
            self._check_threshold()
        except ValidationError as wrong:
            errors |= wrong.message_dict
        if errors:
            raise ValidationError(errors)

    def _name_error(self) -> str:
        if unreadable := unreadable_name(self.name or "", "tier"):
            return unreadable
        other = Tier.objects.exclude(pk=self.pk).filter(name__iexact=self.name).first()
        if other:
            return (
                f"A tier is already called {other.name} (from {other.threshold:,} points): "
                "names are unique whatever their case."
            )
        return ""

    def _check_threshold(self):
        saved = Tier.objects.filter(pk=self.pk).values_list("threshold", flat=True).first()
        # The entry tier (threshold 0) must always exist: every member starts there.
        if saved == 0 and self.threshold != 0:
            raise ValidationError(
                {"threshold": "This is the entry tier: its threshold must stay 0."}
            )
        if saved is None and self.threshold == 0 and Tier.objects.filter(threshold=0).exists():
            raise ValidationError({"threshold": "Another tier already has threshold 0."})
        if saved is not None and self.threshold is not None and self.threshold != saved:
            self._check_keeps_its_rank(saved)
        same = Tier.objects.exclude(pk=self.pk).filter(threshold=self.threshold).first()
        if self.threshold is not None and same is not None:  # named, not "Tier with this..."
            raise ValidationError(
                {"threshold": f"{same.name} starts at {self.threshold:,}: thresholds are unique."}
            )

    def _check_keeps_its_rank(self, saved: int):
        """A tier's threshold moves between its neighbours' only: what members hold
        by rank (the highest tier reached, a degraded tier below the qualified one)
        keeps its meaning. A tier in between is a new tier."""
        others = Tier.objects.exclude(pk=self.pk)
        below = others.filter(threshold__lt=saved).order_by("-threshold").first()
        above = others.filter(threshold__gt=saved).order_by("threshold").first()
        if (below and self.threshold <= below.threshold) or (
            above and self.threshold >= above.threshold
        ):
            low = f"{below} ({below.threshold:,})" if below else "0"
            high = f" and {above} ({above.threshold:,})" if above else ""
            raise ValidationError(
                {
                    "threshold": f"{self.name or 'This tier'} keeps its place among the tiers: "
                    f"a threshold between {low}{high}. To rank the tiers otherwise, add a "
                    "new tier."
                }
            )

    def delete(self, *args, **kwargs):
        if self.threshold == 0:
            raise ValidationError("The entry tier (threshold 0) cannot be deleted.")
        return super().delete(*args, **kwargs)


class ProgrammeVersion(models.Model):
    """Changes with every change to the programme's configuration (tiers, point
    definitions, campaigns). Processes cache the configuration and check this token
    in the query that locks the member, so a cached copy is never used once stale.
    A fresh random token (not a counter) also stays unique across rolled-back changes."""

    token = models.UUIDField(default=uuid.uuid4)

    def __str__(self):
        return str(self.token)

    @classmethod
    def current_token(cls):
        """The token now, or None before the first change."""
        return cls.objects.values_list("token", flat=True).first()

    @classmethod
    def bump(cls, **_signal_kwargs):
        cls.objects.update_or_create(pk=1, defaults={"token": uuid.uuid4()})


class StatusGrant(models.Model):
    """A status match (tiers.services.grant_status): the member's effective tier is at
    least `tier` until the end of `until` (in TIME_ZONE); the nightly degradation job
    ends it. Who, why and when, kept for good; the running one is also on the member
    (Member.granted_tier), which the jobs read."""

    class End(models.TextChoices):
        EXPIRED = "expired", "Its last day passed"
        QUALIFIED = "qualified", "The member qualified for the tier"
        REPLACED = "replaced", "Replaced by another status match"
        MERGED = "merged", "The account was merged into another"
        ENDED = "ended", "Ended early by staff"

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    until = models.DateField(help_text="The last day the tier is granted (TIME_ZONE).")
    reason = models.CharField(max_length=255)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    granted_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end = models.CharField(max_length=20, choices=End.choices, blank=True)
    # Who ended it early, and why (End.ENDED): a match given by mistake.
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    end_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-granted_at", "-pk"]
        permissions = [("grant_status", "Can grant a status match")]
        constraints = [
            models.UniqueConstraint(
                fields=["member"], condition=Q(ended_at=None), name="one_running_status_grant"
            )
        ]
        indexes = [
            # The nightly job's look-up: running grants by their last day.
            models.Index(fields=["until"], condition=Q(ended_at=None), name="status_grant_running")
        ]

    def __str__(self):
        return f"{self.tier} by status match until {self.until:%-d %b %Y}"


class DegradationPolicy(models.Model):
    """Tier degradation for inactivity (D1). One row, off by default."""

    enabled = models.BooleanField(default=False)
    inactivity_days = AtLeastOne(
        default=90,
        # Longer is a typo, and dates that far back cannot be computed: refused with the
        # limit, not with an error page (nor the column's own limit as well).
        validators=[
            AtMost(
                MAX_DAYS, "At most {limit:,} days (ten years) without a purchase make one period."
            ),
        ],
        help_text="Days without a purchase (or since joining) that make one period.",
    )
    levels_per_step = AtLeastOne(
        default=1,
        # More than the programme's tiers drops to the lowest tier anyway; far more is a
        # typo, refused in words rather than by the column's own limit.
        validators=[AtMost(100, "At most {limit:,} tiers per period: more drop to the lowest.")],
        help_text="Tiers a member drops below the qualified tier per full period.",
    )

    objects = ProgrammeQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "degradation policy"

    def __str__(self):
        if not self.enabled:
            return "Degradation off"
        return (
            f"Drop {counted(self.levels_per_step, 'tier')} per {self.inactivity_days} days inactive"
        )

    @classmethod
    def current(cls) -> "DegradationPolicy":
        return cls.objects.get_or_create(pk=1)[0]
