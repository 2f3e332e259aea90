"""The seed programme and a synthetic member base for the demo and the benchmarks."""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.utils import timezone

from core.days import start_of
from points.models import AdjustmentLimit, AwardedOn, Campaign, PointDefinition
from rewards.models import Reward
from tiers.models import Tier

# code, name, threshold, multiplier, points expire, upgrade bonus, benefits
PROGRAMME = [
    ("bronze", "Bronze", 0, "1", True, 0, "Birthday gift"),
    ("silver", "Silver", 1000, "1.5", True, 100, "Free delivery\nBirthday gift"),
    (
        "gold",
        "Gold",
        3000,
        "2",
        False,
        250,
        "Free delivery\nEarly access to sales\nPoints never expire",
    ),
    (
        "platinum",
        "Platinum",
        8000,
        "3",
        False,
        500,
        "Free delivery and returns\nPersonal shopper\nPoints never expire",
    ),
]


# name, cost, minimum tier code, stock (None = unlimited), voucher value (None = a
# product or service, not money), description
CATALOGUE = [
    ("Coffee voucher", 150, None, None, None, "A coffee in any store café."),
    ("5 euro voucher", 500, None, None, "5.00", "Five euros off your next purchase."),
    ("Tote bag", 800, "silver", 200, None, "The brand's canvas tote."),
    ("Free alterations", 1200, "silver", None, None, "One garment altered for free."),
    ("20 euro voucher", 1800, "gold", None, "20.00", "Twenty euros off your next purchase."),
    ("Private shopping evening", 4000, "gold", 25, None, "An evening in store with a stylist."),
    ("Weekend in Seville", 15000, "platinum", 3, None, "Two nights for two, travel included."),
    ("Fashion week invitation", 9000, "platinum", 10, None, "Two seats at our show."),
]


def load_catalogue(tiers: dict[str, Tier]) -> None:
    for name, cost, tier, stock, value, description in CATALOGUE:
        reward, created = Reward.objects.get_or_create(
            name=name,
            defaults=dict(
                points_cost=cost,
                min_tier=tiers[tier] if tier else None,
                stock=stock,
                voucher_value=value and Decimal(value),
                description=description,
            ),
        )
        if not created and value and reward.voucher_value is None:
            # A demo seeded before vouchers had values: give them theirs, once.
            Reward.objects.filter(pk=reward.pk).update(voucher_value=Decimal(value))


def load_programme() -> dict[str, Tier]:
    """Create or update the seed tiers, definitions and campaign. Idempotent."""
    tiers = {}
    # The entry tier keeps its row (members point at it) whatever its code is.
    entry = Tier.objects.get(threshold=0)
    for code, name, threshold, multiplier, expire, bonus, benefits in PROGRAMME:
        values = dict(
            name=name,
            threshold=threshold,
            multiplier=Decimal(multiplier),
            points_expire=expire,
            upgrade_bonus_points=bonus,
            benefits=benefits,
        )
        if threshold == 0:
            Tier.objects.filter(pk=entry.pk).update(code=code, **values)
            tiers[code] = Tier.objects.get(pk=entry.pk)
        else:
            tiers[code], _ = Tier.objects.update_or_create(code=code, defaults=values)
    PointDefinition.objects.update_or_create(
        handle="refer-a-friend",
        defaults=dict(
            name="Refer a friend",
            kind="action",
            points=200,
            counts_toward_tier=True,
            awarded_on=AwardedOn.REFERRAL,
        ),
    )
    PointDefinition.objects.update_or_create(
        handle="write-a-review",
        defaults=dict(name="Write a review", kind="action", points=200, counts_toward_tier=True),
    )
    PointDefinition.objects.update_or_create(
        handle="goodwill-tier-points",
        defaults=dict(name="Goodwill (counts toward tier)", kind="bonus", counts_toward_tier=True),
    )
    now, today = timezone.now(), timezone.localdate()
    Campaign.objects.update_or_create(
        name="Double points weekend",
        defaults=dict(
            multiplier=Decimal(2),
            # From yesterday's midnight to the day after tomorrow's, in the programme's
            # time zone, as a marketer sets a campaign's days.
            starts_at=start_of(today - timedelta(days=1)),
            ends_at=start_of(today + timedelta(days=2)),
            is_active=True,
        ),
    )
    # The seed's "2x points in the birthday month", all year round; and a campaign for
    # large baskets in the two flagship stores.
    Campaign.objects.update_or_create(
        name="Birthday double points",
        defaults=dict(
            multiplier=Decimal(2),
            starts_at=now - timedelta(days=400),
            ends_at=now + timedelta(days=365),
            birthday_month_only=True,
            is_active=True,
        ),
    )
    Campaign.objects.update_or_create(
        name="Flagship big basket",
        defaults=dict(
            multiplier=Decimal("1.5"),
            starts_at=now - timedelta(days=120),
            ends_at=now - timedelta(days=60),
            stores=STORES[:2],
            min_amount=Decimal(100),
            is_active=True,
        ),
    )
    return tiers


def load_goodwill_limits() -> None:
    """The demo's goodwill limits (rules.md G1's example), so that an agent's large
    adjustment shows the approval flow. Apart from the seed programme: the tests and
    benchmarks set their own. Kept as a superuser changed them."""
    for group, per_adjustment, per_month in (
        ("CX agent", 1_000, 10_000),
        ("CX supervisor", 10_000, 100_000),
    ):
        AdjustmentLimit.objects.get_or_create(
            group=Group.objects.get(name=group),
            defaults={"per_adjustment": per_adjustment, "per_month": per_month},
        )


def load_welcome() -> PointDefinition:
    """The demo's welcome points: 50 on enrolment, spendable, not toward the tier. Apart
    from the seed programme, whose members the tests and benchmarks enrol without."""
    definition, _ = PointDefinition.objects.update_or_create(
        handle="welcome",
        defaults=dict(
            name="Welcome points",
            kind="action",
            points=50,
            counts_toward_tier=False,
            awarded_on=AwardedOn.ENROLMENT,
        ),
    )
    return definition


@dataclass(frozen=True)
class Segment:
    share: float
    purchases: tuple[int, int]
    mean_amount: float


# Most customers buy a few times a year; a few spend enough to reach Platinum.
SEGMENTS = [
    Segment(0.55, (1, 6), 35),
    Segment(0.25, (8, 20), 55),
    Segment(0.13, (20, 40), 90),
    Segment(0.07, (40, 70), 140),
]
STORES = [f"STORE-{n:02d}" for n in range(1, 13)]
FIRST_NAMES = (
    "Ana Luis Marta Jorge Lucia Pablo Elena Sergio Carmen Diego Sara Hugo Paula Ivan".split()
)
LAST_NAMES = (
    "Garcia Lopez Martin Sanchez Perez Gomez Ruiz Diaz Moreno Alvarez Romero Navarro".split()
)


def birth_date(rng: random.Random) -> date:
    """A demo member's birth date: an adult's, any day of the year."""
    return date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))


def member_code(n: int) -> str:
    return f"M-{n:05d}"


def synthetic_history(n: int, *, now, rng: random.Random):
    """A member's purchases and returns over the past year, oldest first.

    Yields ("purchase", external_id, amount, occurred_at, channel, store) and
    ("return", external_id, amount, occurred_at, channel, original_external_id).
    """
    segment = rng.choices(SEGMENTS, weights=[s.share for s in SEGMENTS])[0]
    count = rng.randint(*segment.purchases)
    times = sorted(now - timedelta(minutes=rng.randint(60, 365 * 24 * 60)) for _ in range(count))
    for i, occurred_at in enumerate(times):
        amount = Decimal(str(round(rng.lognormvariate(0, 0.6) * segment.mean_amount, 2)))
        amount = max(amount, Decimal("1.00"))
        channel = rng.choice(["pos", "pos", "ecommerce"])
        external_id = f"D-{n:05d}-{i:03d}"
        yield ("purchase", external_id, amount, occurred_at, channel, rng.choice(STORES))
        returned_at = occurred_at + timedelta(days=rng.randint(1, 20))
        if rng.random() < 0.06 and returned_at < now:
            part = amount if rng.random() < 0.5 else (amount / 2).quantize(Decimal("0.01"))
            yield ("return", f"{external_id}-R", part, returned_at, channel, external_id)


@dataclass(frozen=True)
class DemoVoucher:
    """A voucher a demo member redeems after one of their purchases, and what becomes
    of it: used some days later at a store, cancelled, or kept (valid, or expired
    once its 90 days are over)."""

    after_purchase: int  # the index of the purchase it follows
    reward: str
    fate: str  # "used", "cancelled" or "kept"
    days_later: int  # to the use or cancellation
    store: str


def demo_vouchers(n: int, purchases: int) -> list[DemoVoucher]:
    """The vouchers of member n, from a random stream of its own: the members'
    histories stay as they were before vouchers."""
    rng = random.Random(f"vouchers-{n}")
    if purchases < 2 or rng.random() > 0.35:
        return []
    picks = sorted(rng.sample(range(purchases // 2, purchases), k=min(2, purchases // 2)))
    return [
        DemoVoucher(
            after_purchase=index,
            reward=rng.choice(["5 euro voucher", "5 euro voucher", "Coffee voucher"]),
            fate=rng.choices(["used", "cancelled", "kept"], weights=[6, 1, 3])[0],
            days_later=rng.randint(1, 45),
            store=rng.choice(STORES),
        )
        for index in picks[: rng.randint(1, 2)]
    ]
