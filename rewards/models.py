from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.staff_input import (
    Above,
    AtLeastOne,
    AtMost,
    BoundedDecimalField,
    tidy_name,
    transaction_amount_limit,
    unreadable_name,
)
from members.models import Member, from_earliest_day
from points.models import Channel, LedgerEntry
from rewards.codes import masked, new_code, shown
from tiers.models import Tier

# The longest a voucher may be valid: ten years (a typo of days is refused, not kept).
MAX_VALID_DAYS = 3660
# What 0, -5 and 4,000 days all read (the form's lower and upper bounds, the database's)
VALID_DAYS_RANGE = f"A voucher is valid from 1 to {MAX_VALID_DAYS:,} days."
# The most a stock may be set to (more is a typo, or "unlimited": empty). Cancellations
# add units back, and the column holds 2,147,483,647 on PostgreSQL.
MAX_STOCK = 1_000_000_000


# A cost above this is zeros too many: as many points as the highest tier's threshold.
MAX_REWARD_COST = 1_000_000_000
COST_AT_LEAST_ONE = "A reward costs at least 1 point."
VOUCHER_VALUE_ABOVE_ZERO = "A voucher's value is more than 0, or empty."


class Reward(models.Model):
    """An item of the catalogue (W1)."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    points_cost = AtLeastOne(
        too_few=COST_AT_LEAST_ONE,
        validators=[
            AtMost(
                MAX_REWARD_COST,
                "A reward costs at most {limit:,} points: more is a typing error.",
            )
        ],
    )
    min_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Lowest effective tier that may redeem it; empty for everyone.",
    )
    stock = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MaxValueValidator(
                MAX_STOCK, f"At most {MAX_STOCK:,}: leave the stock empty for unlimited."
            )
        ],
        help_text="Empty = unlimited.",
    )
    available_from = models.DateTimeField(null=True, blank=True, validators=[from_earliest_day])
    available_until = models.DateTimeField(null=True, blank=True, validators=[from_earliest_day])
    is_active = models.BooleanField(default=True)
    image = models.ImageField(upload_to="rewards/", blank=True)
    voucher_value = BoundedDecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[
            Above(0, VOUCHER_VALUE_ABOVE_ZERO),
            AtMost(
                transaction_amount_limit,
                "A voucher takes off at most {limit:,}, the largest amount a purchase "
                "may have: more could never be used.",
            ),
        ],
        help_text="Money the voucher takes off at the till (5.00 for a 5 euro voucher); "
        "empty for a product or a service.",
    )
    voucher_valid_days = AtLeastOne(
        default=90,
        too_few=VALID_DAYS_RANGE,
        validators=[AtMost(MAX_VALID_DAYS, "A voucher is valid from 1 to {limit:,} days.")],
        help_text="Days a voucher can be used after the day it is redeemed (until the end "
        "of the last day, in the programme's time zone).",
    )

    class Meta:
        ordering = ["points_cost", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points_cost__gt=0),
                name="reward_cost_positive",
                violation_error_message=COST_AT_LEAST_ONE,
            ),
            models.CheckConstraint(
                condition=Q(voucher_value__isnull=True) | Q(voucher_value__gt=0),
                name="reward_voucher_value_positive",
                violation_error_message=VOUCHER_VALUE_ABOVE_ZERO,
            ),
            models.CheckConstraint(
                condition=Q(voucher_valid_days__gte=1, voucher_valid_days__lte=MAX_VALID_DAYS),
                name="reward_voucher_valid_days_range",
                violation_error_message=VALID_DAYS_RANGE,
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

    def clean(self):
        self.name = tidy_name(self.name)
        if unreadable := unreadable_name(self.name or "", "reward"):
            raise ValidationError({"name": unreadable})
        # Members and agents pick rewards by name: two offered under one name (whatever
        # its case) cannot be told apart in the catalogue.
        if self.is_active and (other := self._offered_under_this_name()):
            raise ValidationError(
                {
                    "name": f"The reward {other.name} ({other.points_cost:,} points) is offered "
                    "under this name: switch it off first, or name this one otherwise."
                }
            )

    def _offered_under_this_name(self) -> "Reward | None":
        offered = Reward.objects.exclude(pk=self.pk).filter(is_active=True)
        return offered.filter(name__iexact=self.name).first()


class VoucherStatus(models.TextChoices):
    VALID = "valid", "Valid"
    USED = "used", "Used"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# W4, W6: the vouchers still holding the unit of stock they took, neither used nor
# cancelled. The index redemption_holding_a_unit is partial on exactly this, and the
# nightly job's query includes it, so that PostgreSQL serves that query from the index.
HOLDING_A_UNIT = Q(
    status="redeemed", used_at__isnull=True, took_unit=True, unit_returned_at__isnull=True
)


# Whoever may use or cancel a voucher sees its code whole: the CX agents at the desk.
SEES_CODES = ("rewards.use_voucher", "rewards.cancel_redemption")


def sees_voucher_codes(user) -> bool:
    return any(user.has_perm(permission) for permission in SEES_CODES)


class Redemption(models.Model):
    """A reward redeemed by a member; cancelling refunds it (W3, W4). It is a voucher
    (W5): a code the customer gives at the till, used once, until `valid_until`."""

    class Status(models.TextChoices):
        REDEEMED = "redeemed", "Redeemed"
        CANCELLED = "cancelled", "Cancelled"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    # The reward's name when redeemed, as its value and validity are: a reward renamed
    # since ("6 euro voucher") does not rename the vouchers already in customers' hands.
    # (Defaults in the database too: a web or worker of the release before, still
    # running while this one migrates, writes redemptions without them.)
    reward_name = models.CharField("reward's name when redeemed", max_length=100, db_default="")
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
    # W5: the voucher. Stored without separators (rewards.codes).
    code = models.CharField(max_length=16, unique=True, default=new_code, editable=False)
    valid_until = models.DateField(
        help_text="The last day it can be used, to the end of the day in the programme's time zone."
    )
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Money it takes off at the till, as the reward said when redeemed.",
    )
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The till's id of the use (the API's idempotency key): the same id again finds it.
    used_external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    used_channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    used_store = models.CharField(max_length=50, blank=True)
    # W3: whether redeeming took a unit of the reward's stock; none was taken while the
    # reward was unlimited, so none goes back when a stock is set later.
    took_unit = models.BooleanField("took a unit of stock", default=False, db_default=False)
    # W4, W6: when the voucher let go of the unit it took (cancelled, or expired unused:
    # the nightly job); empty while it holds it. Set once: the unit comes back once.
    unit_returned_at = models.DateTimeField("unit back in stock", null=True, blank=True)

    class Meta:
        ordering = ["-redeemed_at", "-pk"]
        indexes = [
            models.Index(fields=["member", "-redeemed_at"]),
            # the redemption list, newest first, and its voucher filters (bench/vouchers.py)
            models.Index(fields=["-redeemed_at", "-id"], name="redemption_newest_first"),
            # W6: the vouchers still holding a unit, by their last day (the nightly job)
            models.Index(
                fields=["valid_until"],
                name="redemption_holding_a_unit",
                condition=HOLDING_A_UNIT,
            ),
        ]
        permissions = [
            ("cancel_redemption", "Can cancel a redemption and refund its points"),
            ("use_voucher", "Can mark a voucher used at the desk"),
        ]
        constraints = [
            # W4 as changed by W5: whatever races, a voucher is used or cancelled, not both.
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | ~Q(status="cancelled"),
                name="redemption_used_or_cancelled",
                violation_error_message="A used voucher cannot be cancelled.",
            ),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True, used_external_id__isnull=True)
                | Q(used_at__isnull=False, used_external_id__isnull=False),
                name="redemption_use_has_its_id",
                violation_error_message="A used voucher keeps the id of its use.",
            ),
        ]

    def __str__(self):
        # Named by its voucher, not its member: the admin's history keeps this text, and
        # an erased member's code must not stay in it. The code masked: the history and
        # the page titles are read by staff who may not use it.
        return f"{self.reward_name} {self.masked_code}"

    @property
    def holds_unit(self) -> bool:
        """It took a unit of stock and has not given it back (W4, W6)."""
        return self.took_unit and self.unit_returned_at is None

    @property
    def holder(self) -> Member:
        """The account that holds it now: the member who redeemed it, or the account
        that one was merged into (M5: a cancellation refunds it)."""
        return self.member.merged_into or self.member

    @property
    def holder_code(self) -> str | None:
        """The holder's customer code, for a till; none once the holder was erased: the
        code given in its place would lead from the voucher to the account's history."""
        holder = self.holder
        return None if holder.erased_at else holder.external_id

    @property
    def shown_code(self) -> str:
        return shown(self.code)

    @property
    def masked_code(self) -> str:
        """For staff who may not use it (sees_voucher_codes)."""
        return masked(self.code)

    @property
    def voucher_name(self) -> str:
        """ "5 euro voucher", "Tote bag voucher": what a till operator is told about."""
        name = self.reward_name
        return name if name.lower().endswith("voucher") else f"{name} voucher"

    # The voucher's status: the one place it is decided, in Python for a row (pages,
    # the API) and in SQL for a list (the admin's filter); tests hold them together.

    def voucher_status_on(self, today) -> VoucherStatus:
        """`today`: the date in the programme's time zone (TIME_ZONE)."""
        if self.status == self.Status.CANCELLED:
            return VoucherStatus.CANCELLED
        if self.used_at is not None:
            return VoucherStatus.USED
        if self.valid_until < today:
            return VoucherStatus.EXPIRED
        return VoucherStatus.VALID

    @property
    def voucher_status(self) -> VoucherStatus:
        return self.voucher_status_on(timezone.localdate())

    @classmethod
    def voucher_status_q(cls, status: VoucherStatus, today) -> Q:
        unused = Q(status=cls.Status.REDEEMED, used_at__isnull=True)
        return {
            VoucherStatus.CANCELLED: Q(status=cls.Status.CANCELLED),
            VoucherStatus.USED: Q(status=cls.Status.REDEEMED, used_at__isnull=False),
            VoucherStatus.EXPIRED: unused & Q(valid_until__lt=today),
            VoucherStatus.VALID: unused & Q(valid_until__gte=today),
        }[status]

    @property
    def voucher_summary(self) -> str:
        """The status in a few words, with its date (and where it was used)."""
        status = self.voucher_status
        if status == VoucherStatus.CANCELLED:
            return f"Cancelled {_day(self.cancelled_at)}"
        if status == VoucherStatus.USED:
            where = f", {self.used_where}" if self.used_where else ""
            return f"Used {_day(self.used_at)}{where}"
        if status == VoucherStatus.EXPIRED:
            return f"Expired {self.valid_until:%-d %b %Y}"
        return f"Valid until {self.valid_until:%-d %b %Y}"

    @property
    def used_where(self) -> str:
        """Where the voucher was used, as staff and tills read it: its store, or the
        desk for a use marked in the CX Manager; "" when neither is known."""
        if self.used_store:
            return self.used_store
        return "the desk" if self.used_channel == Channel.MANUAL else ""

    @property
    def is_cancellable(self) -> bool:
        """W4 as W5 changes it: an unused voucher, valid or expired."""
        return self.status == self.Status.REDEEMED and self.used_at is None


def _day(moment) -> str:
    return f"{timezone.localtime(moment):%-d %b %Y}" if moment else ""
