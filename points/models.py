from decimal import Decimal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from core.days import MAX_DAYS
from core.models import ImportBatch
from core.staff_input import (
    AtMost,
    BoundedDecimalField,
    adjustment_limit,
    tidy_name,
    unreadable_name,
)
from members.models import Member
from tiers.models import ProgrammeQuerySet


class Channel(models.TextChoices):
    POS = "pos", "Point of sale"
    ECOMMERCE = "ecommerce", "E-commerce"
    API = "api", "API"
    IMPORT = "import", "Import"
    MANUAL = "manual", "Manual"


MANUAL_ADJUSTMENT = "manual-adjustment"
TIER_UP_BONUS = "tier-up-bonus"
OPENING_BALANCE = "opening-balance"  # points migration 0012: the members import's
STORE_LENGTH = 50  # a store code, on a transaction and in a campaign's stores


# Points per currency unit: 10,000 is 1.0000 typed without its point, not a programme.
# At the bound, the largest purchase (MAX_TRANSACTION_AMOUNT, 100,000 by default) at the
# highest tier multiplier (x100) earns 1,000,000,000 points, the most a purchase may
# (points.services.rules.MAX_PURCHASE_POINTS).
MAX_EARN_RATE = Decimal(100)
AT_MOST_MAX_EARN_RATE = AtMost(
    MAX_EARN_RATE,
    "An earn rate is at most {limit:,} points per currency unit: 1 gives a point per euro, "
    "0.1 a point per ten euros.",
)
EARN_RATE_NOT_NEGATIVE = "The earn rate cannot be negative (0 earns nothing)."


class AwardedOn(models.TextChoices):
    CALLER = "", "When a caller names it"
    ENROLMENT = "enrolment", "On enrolment (welcome points)"
    REFERRAL = "referral", "To the referrer, at the friend's first purchase"


class PointDefinition(models.Model):
    """How a kind of points is earned and what it counts for (P1)."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        ACTION = "action", "Action"
        BONUS = "bonus", "Bonus"

    # Created by a migration and found by their handle: a marketer may rename them or
    # change their counting, never their handle or kind.
    SYSTEM_HANDLES = (MANUAL_ADJUSTMENT, TIER_UP_BONUS, OPENING_BALANCE)

    name = models.CharField(max_length=100)
    handle = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    earn_rate = BoundedDecimalField(
        max_digits=8,
        decimal_places=4,
        default=1,
        validators=[MinValueValidator(0, EARN_RATE_NOT_NEGATIVE), AT_MOST_MAX_EARN_RATE],
        help_text="Points per currency unit (purchase).",
    )
    points = models.PositiveIntegerField(
        default=0,
        # Staff give or take back an action's points whole, in one adjustment (P6).
        validators=[
            AtMost(
                adjustment_limit,
                "An action gives at most {limit:,} points, as much as one adjustment may give.",
            )
        ],
        help_text="Fixed points (action).",
    )
    accrue_delay_days = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_DAYS)],  # ten years: any later date is not a date
        help_text="Days before the points become available to redeem (at most 3,650).",
    )
    counts_toward_tier = models.BooleanField(default=True)
    redeemable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    awarded_on = models.CharField(
        max_length=10,
        choices=AwardedOn.choices,
        default=AwardedOn.CALLER,
        blank=True,
        help_text="Given by the programme itself on enrolment, or to the referrer at a "
        "referred friend's first purchase; otherwise by a till, the API or by hand.",
    )

    objects = ProgrammeQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(
                Lower("handle"),
                name="definition_handle_unique_any_case",
                violation_error_message="Another point definition has this handle: handles "
                "are unique whatever their case.",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(kind="purchase", is_active=True),
                name="one_active_purchase_definition",
                violation_error_message="Only one purchase definition can be active.",
            ),
            models.UniqueConstraint(
                fields=["awarded_on"],
                condition=Q(is_active=True) & ~Q(awarded_on=""),
                name="one_active_definition_per_occasion",
                violation_error_message="Only one active definition can be given on "
                "enrolment, and one for referrals: switch the other off first.",
            ),
            models.CheckConstraint(
                condition=Q(awarded_on="") | Q(kind="action"),
                name="programme_awards_are_actions",
                violation_error_message="Points given on enrolment or for a referral are "
                "a fixed number: choose the kind Action and set its points.",
            ),
            models.CheckConstraint(
                condition=Q(earn_rate__gte=0),
                name="earn_rate_not_negative",
                violation_error_message=EARN_RATE_NOT_NEGATIVE,
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        # Staff read it on every ledger line, members in the API's ledger.
        self.name = tidy_name(self.name)
        if unreadable := unreadable_name(self.name or "", "point definition"):
            raise ValidationError({"name": unreadable})
        stored = type(self).objects.filter(pk=self.pk).values_list("handle", "kind").first()
        if stored and stored[0] in self.SYSTEM_HANDLES and stored != (self.handle, self.kind):
            raise ValidationError(
                f"{stored[0]} is a system definition: its handle and kind cannot change."
            )
        errors = {}  # each said at once, and a field's own spares it Django's generic one
        if not (self.redeemable or self.counts_toward_tier):  # an "Assigned +4" of nothing
            errors[NON_FIELD_ERRORS] = (
                "Points of this definition would count for nothing: make them redeemable, "
                "count them toward the tier, or both."
            )
        earns_purchases = self.is_active and self.kind == self.Kind.PURCHASE
        if self.pk and not earns_purchases and (why := self.why_purchases_need_it()):
            errors["is_active" if not self.is_active else "kind"] = why
        # Files and the API name a definition by its handle, and people type it: "Review"
        # and "review" would be two definitions that read as one. The constraint (Meta)
        # is the final judge.
        others = type(self).objects.exclude(pk=self.pk)
        if self.handle and (other := others.filter(handle__iexact=self.handle).first()):
            errors["handle"] = (
                f"{other} has the handle {other.handle}: handles are unique whatever their "
                "case (files and the API name definitions by it)."
            )
        if errors:
            raise ValidationError(errors)

    def why_purchases_need_it(self) -> str:
        """Why this definition, as saved, stays the active purchase definition: purchases
        earn through it (P1), and with none every purchase is refused, a till's
        included. "" for any other definition."""
        saved = type(self).objects.filter(pk=self.pk, kind=self.Kind.PURCHASE, is_active=True)
        name = saved.values_list("name", flat=True).first()
        if name is None:
            return ""
        return (
            f"Purchases earn by {name}: without it every purchase (tills, web shop, API, "
            "files) would be refused. To give no purchase points for a while, set its earn "
            "rate to 0; to earn otherwise, change its earn rate or counting."
        )


class Transaction(models.Model):
    """A purchase, return or action reported by a channel. Idempotent on external_id (P8)."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        RETURN = "return", "Return"
        ACTION = "action", "Action"

    # Every purchase writes each index of this table: only those a query needs, and
    # the optional links indexed only where set.
    external_id = models.CharField(max_length=100)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    occurred_at = models.DateTimeField()
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.API)
    store = models.CharField(max_length=STORE_LENGTH, blank=True)
    original = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="returns",
        db_index=False,
    )
    definition = models.ForeignKey(
        PointDefinition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The account that recorded it (an API key's, or a staff user's), also when it
    # earned nothing and so wrote no ledger entry to name it; none for an import's (its
    # batch names who). No constraint: added to a table of millions of rows, a
    # constraint would be checked over all of them while writes wait.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
        verbose_name="recorded by",
    )
    # The CX Manager import that brought it in, if any (indexed where set).
    batch = models.ForeignKey(
        ImportBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            models.Index(fields=["member", "-occurred_at"]),
            models.Index(
                fields=["original"],
                condition=Q(original__isnull=False),
                name="transaction_original",
            ),
            models.Index(
                fields=["definition"],
                condition=Q(definition__isnull=False),
                name="transaction_definition",
            ),
            models.Index(
                fields=["batch"], condition=Q(batch__isnull=False), name="transaction_batch"
            ),
            # The list filtered by returns or actions (a sliver): purchases write nothing.
            models.Index(
                fields=["kind", "id"], condition=~Q(kind="purchase"), name="transaction_kind"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="transaction_external_id_unique"),
            models.CheckConstraint(
                condition=Q(kind="action") | Q(amount__gt=0), name="transaction_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(kind="return", original__isnull=False)
                | (~Q(kind="return") & Q(original__isnull=True)),
                name="return_names_original",
            ),
        ]

    def __str__(self):
        return self.external_id


class LedgerQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError("Ledger entries are append-only: add a correcting entry instead.")

    def delete(self):
        raise ValidationError("Ledger entries are append-only and cannot be deleted.")


# The ledger keys (LedgerEntry.external_id) the programme writes for itself, each
# followed by a member's id or code so that the unique index makes "once" hold: welcome
# and referral points, opening balances. No id staff choose (a grant's) may start so.
WELCOME_KEY = "enrolment:"
REFERRAL_KEY = "referral:"
OPENING_POINTS_KEY = "opening-points:"
OPENING_LIFETIME_KEY = "opening-lifetime:"
PROGRAMME_KEYS = (WELCOME_KEY, REFERRAL_KEY, OPENING_POINTS_KEY, OPENING_LIFETIME_KEY)


class LedgerEntry(models.Model):
    """One signed movement of points (P7). Append-only: never updated, never deleted.

    `counts_toward_tier` and `redeemable` are copied from the definition when the entry
    is written, so editing a definition later never rewrites history.
    """

    class Kind(models.TextChoices):
        EARN = "earn", "Earned"
        RETURN = "return", "Return"
        BONUS = "bonus", "Bonus"
        ADJUSTMENT = "adjustment", "Adjustment"
        REDEMPTION = "redemption", "Redemption"
        REFUND = "refund", "Refund"
        EXPIRY = "expiry", "Expiry"
        # Two accounts joined: out of the duplicate, into the survivor (merging.py).
        MERGE = "merge", "Merge"

    # Indexed by the composite indexes in Meta (written in bulk: no index it does not need).
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False
    )
    definition = models.ForeignKey(
        PointDefinition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    points = models.BigIntegerField()
    counts_toward_tier = models.BooleanField()
    redeemable = models.BooleanField()
    issued_at = models.DateTimeField()
    accrue_at = models.DateTimeField()
    # Indexed only where set (ledger_transaction): expiry, bonus and adjustment entries,
    # written in bulk, have none and cost no index write for it.
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        db_index=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # What the writers compose (campaign names, a staff user's words) is shortened or
    # refused to fit it.
    REASON_LENGTH = 255
    reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    # The expiry cutoff (a date) an expiry entry belongs to: the job's, one per member and
    # cutoff, or a late return's giving back some of it.
    cutoff = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The CX Manager import that wrote it, if any (indexed where set).
    batch = models.ForeignKey(
        ImportBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        db_index=False,
        db_constraint=False,
    )
    # The caller's id of an entry written without a transaction (a point grant, an
    # opening balance): written once however often it is sent (P8). NULL, not "", for
    # the others, so that the unique index (ledger_external_id_unique) skips them. The
    # programme's own start with one of PROGRAMME_KEYS.
    external_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    # Of a purchase's earning: the points each campaign added, by campaign id as text
    # (what the purchase earned less what it would have earned without that campaign),
    # for the campaigns' results (analytics). NULL when no campaign applied.
    campaign_points = models.JSONField(null=True, blank=True, editable=False)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "-pk"]
        verbose_name_plural = "ledger entries"
        # P6: the CX Manager's "Assign points" form (a CX agent's right, not a marketer's).
        permissions = [
            ("assign_points", "Can assign points by hand"),
            ("import_grants", "Can import point grants"),
        ]
        indexes = [
            models.Index(fields=["member", "-issued_at"]),
            models.Index(fields=["member", "accrue_at"]),
            models.Index(
                fields=["transaction"],
                name="ledger_transaction",
                condition=models.Q(transaction__isnull=False),
            ),
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="ledger_batch"),
            # The ledger list filtered by a kind other than earned points (returns,
            # bonuses, refunds: a sliver of the ledger) without reading the whole ledger
            # to find none; purchases write nothing to it.
            models.Index(fields=["kind", "id"], condition=~Q(kind="earn"), name="ledger_kind"),
            # The campaigns' results (analytics): only purchases earned under a campaign.
            models.Index(
                fields=["issued_at"],
                condition=Q(campaign_points__isnull=False),
                name="ledger_campaign_earnings",
            ),
            # Goodwill limits: what one staff user gave by hand in a month (small: adjustments
            # are a sliver of the ledger, and the bulk writers never write one).
            models.Index(
                fields=["created_by", "issued_at"],
                condition=Q(kind="adjustment"),
                name="ledger_adjustment_by",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="ledger_external_id_unique",
            ),
            # E3: exactly one expiry entry per member and cutoff, whoever runs the job.
            # A late return's entry giving back some of it names its return
            # (points.services.late_returns) and is not the job's.
            models.UniqueConstraint(
                fields=["member", "cutoff"],
                condition=Q(kind="expiry", transaction__isnull=True),
                name="one_expiry_per_member_and_cutoff",
            ),
            models.CheckConstraint(
                condition=Q(kind="expiry", cutoff__isnull=False)
                | (~Q(kind="expiry") & Q(cutoff__isnull=True)),
                name="expiry_entries_name_their_cutoff",
            ),
        ]

    def __str__(self):
        return f"{self.points:+,d} {self.get_kind_display()} ({self.member.external_id})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("Ledger entries are append-only: add a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Ledger entries are append-only and cannot be deleted.")


# Campaigns, goodwill limits and requests (governance of manual points), the expiry
# policy and runs, and the analytics' daily snapshots live in modules of their own
# (Django finds them there as points' models): imported here so that `points.models`
# names every model.
from points.campaign_models import Campaign, CampaignStatus  # noqa: E402, F401
from points.expiry_models import ExpiryPolicy, ExpiryRun  # noqa: E402, F401
from points.goodwill_models import AdjustmentLimit, AdjustmentRequest  # noqa: E402, F401
from points.snapshot_models import CampaignResult, DailyPoints, DailyTier  # noqa: E402, F401
