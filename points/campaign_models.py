"""Campaigns (P3 and their audiences): a multiplier on purchase points for a window,
for some tiers, channels, stores, amounts and birthday months. A module of points'
models, imported by points.models; the earning reads them through
Campaign.applies_to_purchase."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.functional import cached_property

from core.staff_input import (
    Above,
    AtMost,
    BoundedDecimalField,
    tidy_name,
    transaction_amount_limit,
    unreadable_name,
)
from members.models import from_earliest_day
from points.models import STORE_LENGTH, Channel
from tiers.models import MULTIPLIER_ABOVE_ZERO, Multiplier, ProgrammeQuerySet, Tier

ENDS_AFTER_START = "The campaign must end after it starts: check its start and end."
MIN_AMOUNT_ABOVE_ZERO = "The minimum amount must be above 0 (leave it empty for any amount)."


class CampaignStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SCHEDULED = "scheduled", "Scheduled"
    ENDED = "ended", "Ended"
    INACTIVE = "inactive", "Inactive"


class CampaignQuerySet(ProgrammeQuerySet):
    def earning(self):
        """The campaigns a purchase may earn under (applies_to): switched on, or switched
        off after they started, for the purchases made before that reach us late."""
        return self.filter(Q(is_active=True) | Q(switched_off_at__gt=F("starts_at")))

    def with_status(self, now):
        """Each campaign's `status` at `now`, read as applies_to reads the window: from
        its start, up to but not including its end; switched off, inactive."""
        return self.annotate(
            status=models.Case(
                models.When(is_active=False, then=models.Value(CampaignStatus.INACTIVE)),
                models.When(starts_at__gt=now, then=models.Value(CampaignStatus.SCHEDULED)),
                models.When(ends_at__lte=now, then=models.Value(CampaignStatus.ENDED)),
                default=models.Value(CampaignStatus.RUNNING),
                output_field=models.CharField(),
            )
        )


class Campaign(models.Model):
    """A multiplier on purchase points for a time window, optionally limited (P3)."""

    name = models.CharField(max_length=100)
    multiplier = Multiplier()
    starts_at = models.DateTimeField(validators=[from_earliest_day])
    ends_at = models.DateTimeField(validators=[from_earliest_day])
    tiers = models.ManyToManyField(
        Tier, blank=True, help_text="Leave empty for every tier.", related_name="+"
    )
    channels = models.JSONField(
        default=list, blank=True, help_text="Channel codes; leave empty for every channel."
    )
    stores = models.JSONField(
        default=list, blank=True, help_text="Store codes; leave empty for every store."
    )
    min_amount = BoundedDecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[
            Above(0, MIN_AMOUNT_ABOVE_ZERO),
            AtMost(
                transaction_amount_limit,
                "No purchase is above {limit:,} (MAX_TRANSACTION_AMOUNT): with a higher "
                "minimum the campaign would never apply.",
            ),
        ],
        help_text="A purchase below this amount earns no campaign multiplier.",
    )
    birthday_month_only = models.BooleanField(
        default=False,
        help_text="Only for members in their birthday month (in the programme's time zone).",
    )
    is_active = models.BooleanField(default=True)
    # When a marketer switched it off (points.services.campaigns): it ends then. Empty for
    # a campaign switched on, one created off, and one switched off before it was kept
    # (it ends at its start).
    switched_off_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(multiplier__gt=0),
                name="campaign_multiplier_positive",
                violation_error_message=MULTIPLIER_ABOVE_ZERO,
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="campaign_ends_after_start",
                violation_error_message=ENDS_AFTER_START,
            ),
            models.CheckConstraint(
                condition=Q(min_amount__isnull=True) | Q(min_amount__gt=0),
                name="campaign_min_amount_positive",
                violation_error_message=MIN_AMOUNT_ABOVE_ZERO,
            ),
        ]

    def __str__(self):
        # "x2.5" however it was read (the form's 2.5, the column's 2.50), as the list writes it
        times = f"x{self.multiplier.normalize():f}" if self.multiplier is not None else ""
        return f"{self.name} ({times})" if times else self.name

    def clean(self):
        # Beside the end, where the marketer corrects it (the constraint's own message
        # would stand above the form, naming no field).
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": ENDS_AFTER_START})
        # The list, the stack warnings and every ledger line name it.
        self.name = tidy_name(self.name)
        if unreadable := unreadable_name(self.name or "", "campaign"):
            raise ValidationError({"name": unreadable})
        unknown = set(self.channels or []) - set(Channel.values)
        if unknown:
            raise ValidationError({"channels": f"Unknown channel: {', '.join(sorted(unknown))}."})
        stores = self.stores
        if not isinstance(stores, list) or not all(
            isinstance(s, str) and 0 < len(s) <= STORE_LENGTH for s in stores
        ):
            raise ValidationError(
                {"stores": f"A list of store codes of 1 to {STORE_LENGTH} characters."}
            )

    def status_at(self, now) -> CampaignStatus:
        """The campaign's status at `now`, as CampaignQuerySet.with_status reads it."""
        if not self.is_active:
            return CampaignStatus.INACTIVE
        if self.starts_at > now:
            return CampaignStatus.SCHEDULED
        return CampaignStatus.ENDED if self.ends_at <= now else CampaignStatus.RUNNING

    @property
    def runs_until(self):
        """The end of the window it runs in: its end, or when it was switched off
        (save_campaign), its start for one that never ran switched on.
        CampaignQuerySet.earning reads it."""
        if self.is_active:
            return self.ends_at
        return min(self.ends_at, self.switched_off_at or self.starts_at)

    @property
    def ran(self) -> bool:
        """Whether it ran at all: switched on, or switched off after it started
        (CampaignQuerySet.earning, in SQL)."""
        return self.runs_until > self.starts_at

    def applies_to(self, *, at, tier_id: int, channel: str) -> bool:
        """The one place where a campaign's window, tiers and channels are read (P3):
        whether it runs for a tier on a channel at `at`, whatever the purchase."""
        if not self.starts_at <= at < self.runs_until:
            return False
        if self.channels and channel not in self.channels:
            return False
        return not self.limited_to_tier_ids or tier_id in self.limited_to_tier_ids

    def applies_to_purchase(
        self, *, at, tier_id: int, channel: str, store: str, amount, birth_date
    ) -> bool:
        """applies_to, and the campaign's audience of purchases: its stores, its
        minimum amount and, for a birthday campaign, the member's birthday month (the
        month of `at` in TIME_ZONE). The one place where they are read."""
        if not self.applies_to(at=at, tier_id=tier_id, channel=channel):
            return False
        if self.stores and store not in self.stores:
            return False
        if self.min_amount is not None and amount < self.min_amount:
            return False
        return not self.birthday_month_only or (
            birth_date is not None and timezone.localtime(at).month == birth_date.month
        )

    @cached_property
    def limited_to_tier_ids(self) -> frozenset[int]:
        """The tiers the campaign is limited to (none: all tiers), read once per
        instance: the programme's cached campaigns are asked for every purchase."""
        return frozenset(tier.pk for tier in self.tiers.all())
