"""Block expiry's policy (E1: one row, off by default) and the cutoffs it has
completed (E3). A module of points' models, imported by points.models."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.days import MAX_DAYS, ten_years_after
from core.staff_input import AtMost
from core.words import counted
from tiers.models import ProgrammeQuerySet


class ExpiryPolicy(models.Model):
    """Block expiry (E1): all available points expire together at the end of each
    period. One row, off by default."""

    class Cycle(models.TextChoices):
        NEVER = "never", "Never"
        MONTHLY = "monthly", "Monthly (last day of each month)"
        QUARTERLY = "quarterly", "Quarterly (31 Mar, 30 Jun, 30 Sep, 31 Dec)"
        ANNUAL = "annual", "Annual (31 December)"

    cycle = models.CharField(max_length=10, choices=Cycle.choices, default=Cycle.NEVER)
    starts_on = models.DateField(
        null=True,
        blank=True,
        help_text="Only cutoffs on or after this date expire points. Set to today when a "
        "cycle is switched on, so past cutoffs never wipe balances.",
    )
    reminder_days = models.PositiveIntegerField(
        default=14,
        validators=[AtMost(MAX_DAYS, "At most {limit:,} days (ten years) before a cutoff.")],
        help_text="Days before a cutoff that members with points at stake are told.",
    )

    objects = ProgrammeQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "expiry policy"

    def __str__(self):
        if self.cycle == self.Cycle.NEVER:
            return "Points never expire"
        return f"{self.get_cycle_display()}, from {self.starts_on:%-d %b %Y}"

    def clean(self):
        today = timezone.localdate()
        if self.cycle != self.Cycle.NEVER and self.starts_on is None:
            self.starts_on = today
        # A start decades ahead is a typo (and cutoffs near the calendar's end cannot
        # be computed): refused with the limit.
        if self.starts_on and self.starts_on > ten_years_after(today):
            raise ValidationError({"starts_on": "Choose a start date within the next ten years."})

    @classmethod
    def current(cls) -> "ExpiryPolicy":
        return cls.objects.get_or_create(pk=1)[0]


class ExpiryRun(models.Model):
    """A cutoff whose expiry is complete (E3): the job skips it from then on."""

    cutoff = models.DateField(unique=True)
    processed_at = models.DateTimeField(default=timezone.now)
    members = models.PositiveIntegerField(default=0)
    points = models.BigIntegerField(default=0)
    # Whether the programme analytics have taken its cutoff day since it ran (set by
    # the snapshot that saw it: points.services.snapshots).
    in_analytics = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-cutoff"]

    def __str__(self):
        cutoff = f"{self.cutoff:%-d %b %Y}"
        points, members = counted(self.points, "point"), counted(self.members, "member")
        return f"Expiry of {cutoff}: {points} from {members}"
