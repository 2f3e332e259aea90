"""P1-P8: earning, campaigns, returns, accrual, adjustments, the ledger, idempotency."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from members.models import Member
from points.models import Campaign, LedgerEntry, PointDefinition, Transaction
from points.services import adjust_points, award_action, record_return
from tests.conftest import at, definition, earned, give_return, postgres_only, summary
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def ledger_state():
    return (
        LedgerEntry.objects.count(),
        Transaction.objects.count(),
        list(Member.objects.values_list("points_balance", "lifetime_points").order_by("pk")),
    )


# P1


def test_P1_purchases_earn_through_the_active_purchase_definition(member, buy):
    PointDefinition.objects.filter(handle="purchase-points").update(earn_rate="2")
    purchase = buy(member, "10")
    assert earned(purchase) == 20
    assert LedgerEntry.objects.get(transaction=purchase).definition.handle == "purchase-points"


def test_P1_only_one_purchase_definition_is_active(tiers):
    with pytest.raises(IntegrityError), transaction.atomic():
        PointDefinition.objects.create(name="Other", handle="other", kind="purchase")


def test_P1_an_action_earns_its_fixed_points(member):
    referral = definition("refer-a-friend")
    txn = award_action(
        member=member, definition=referral, occurred_at=at("2026-03-01"), external_id="A-1"
    )
    assert earned(txn) == 200
    assert summary(member)["lifetime"] == 200


def test_P1_an_inactive_action_is_refused(member):
    PointDefinition.objects.filter(handle="refer-a-friend").update(is_active=False)
    with pytest.raises(ValidationError, match="not an active action"):
        award_action(
            member=member,
            definition=definition("refer-a-friend"),
            occurred_at=at("2026-03-01"),
            external_id="A-2",
        )


# P2


def test_P2_points_are_floored_whole_points(member, buy):
    assert earned(buy(member, "10.99")) == 10


def test_P2_purchase_points_use_the_effective_tier_multiplier(member, buy):
    buy(member, "1000")
    assert earned(buy(member, "33.33")) == 49  # 49.995 floored


def test_P2_amount_with_more_than_two_decimals_is_refused(member, buy):
    with pytest.raises(ValidationError, match="more than two decimals"):
        buy(member, "10.001")
    with pytest.raises(ValidationError, match="positive"):
        buy(member, "0")
    assert Transaction.objects.count() == 0


# P3


def campaign(multiplier, start="2026-03-01", end="2026-03-08", **limits):
    tiers = limits.pop("tiers", [])
    c = Campaign.objects.create(
        name=f"x{multiplier}",
        multiplier=multiplier,
        starts_at=at(start, 0),
        ends_at=at(end, 0),
        **limits,
    )
    c.tiers.set(tiers)
    return c


def test_P3_gold_in_a_x2_campaign_earns_x4(member, buy):
    buy(member, "3000", when=at("2026-02-01"))
    assert summary(member)["effective_tier"].code == "gold"
    campaign(2)
    assert earned(buy(member, "100", when=at("2026-03-02"))) == 400


def test_P3_campaigns_apply_only_inside_their_window(member, buy):
    campaign(2)
    assert earned(buy(member, "100", when=at("2026-02-28"))) == 100
    assert earned(buy(member, "100", when=at("2026-03-08", 0))) == 100  # ends_at excluded
    assert earned(buy(member, "100", when=at("2026-03-01", 0))) == 200


def test_P3_campaign_multipliers_compose(member, buy):
    campaign(2)
    campaign("1.5")
    assert earned(buy(member, "100")) == 300


def test_P3_campaign_limited_to_tiers_and_channels(tiers, make_member, buy):
    bronze, gold = make_member(), make_member()
    buy(gold, "3000", when=at("2026-02-01"))
    campaign(3, tiers=[tiers["gold"]])
    campaign(2, channels=["ecommerce"])
    assert earned(buy(bronze, "100", channel="pos")) == 100
    assert earned(buy(bronze, "100", channel="ecommerce")) == 200
    assert earned(buy(gold, "100", channel="pos")) == 600
    assert earned(buy(gold, "100", channel="ecommerce")) == 1200


def test_P3_an_unknown_channel_in_a_campaign_is_refused(tiers):
    c = Campaign(name="Bad", multiplier=2, starts_at=at("2026-01-01"), ends_at=at("2026-02-01"))
    c.channels = ["fax"]
    with pytest.raises(ValidationError, match="Unknown channel: fax"):
        c.full_clean()


# P4


def test_P4_return_reverses_at_the_multiplier_the_purchase_earned(member, buy):
    buy(member, "1000", when=at("2026-03-01"))  # now Silver
    silver_purchase = buy(member, "200", when=at("2026-03-02"))  # 300 points at x1.5
    buy(member, "1400", when=at("2026-03-03"))  # now Gold (x2)
    assert summary(member)["effective_tier"].code == "gold"
    assert earned(give_return(member, silver_purchase, "100")) == -150


def test_P4_returns_round_half_up_and_never_reverse_more_than_awarded(member, buy):
    purchase = buy(member, "3")  # 3 points
    assert earned(give_return(member, purchase, "0.50", when=at("2026-03-05"))) == -1  # 0.5 -> 1
    assert earned(give_return(member, purchase, "1.00", when=at("2026-03-06"))) == -1
    assert (
        earned(give_return(member, purchase, "1.50", when=at("2026-03-07"))) == -1
    )  # what is left
    reversed_total = LedgerEntry.objects.filter(member=member, kind="return").aggregate(
        total=Sum("points")
    )["total"]
    assert reversed_total == -3


def test_P4_a_purchase_returned_in_parts_ends_at_zero(member, buy):
    purchase = buy(member, "30")
    for day in ("2026-03-05", "2026-03-06", "2026-03-07"):
        give_return(member, purchase, "10", when=at(day))
    assert summary(member)["lifetime"] == 0
    assert summary(member)["available"] == 0


def test_P4_return_above_what_is_left_is_refused_and_writes_nothing(member, buy):
    purchase = buy(member, "100")
    give_return(member, purchase, "60")
    before = ledger_state()
    with pytest.raises(ValidationError, match="more than the 40.00 left"):
        give_return(member, purchase, "50", when=at("2026-03-11"))
    assert ledger_state() == before


def test_P4_return_must_name_a_purchase_of_the_member(make_member, buy):
    alice, bob = make_member(), make_member()
    purchase = buy(alice, "100")
    with pytest.raises(ValidationError, match="has no purchase"):
        give_return(bob, purchase, "10")
    with pytest.raises(ValidationError, match="has no purchase"):
        record_return(
            member=alice,
            amount="10",
            occurred_at=at("2026-03-10"),
            external_id="R-x",
            original_external_id="NOPE",
        )


def test_P4_return_below_a_threshold_lowers_the_tier(member, buy):
    purchase = buy(member, "1000")
    assert summary(member)["qualified_tier"].code == "silver"
    give_return(member, purchase, "1")
    s = summary(member)
    assert s["lifetime"] == 999 and s["qualified_tier"].code == "bronze"
    assert s["effective_tier"].code == "bronze"


def test_P4_return_may_take_the_available_balance_below_zero(member, buy, staff):
    purchase = buy(member, "100")
    adjust_points(member=member, points=-100, reason="Spent at the counter", by=staff)
    give_return(member, purchase, "100")
    assert summary(member)["available"] == -100


# P5


def test_P5_pending_points_count_toward_tier_but_are_not_available(member, buy):
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=14)
    buy(member, "1000", when=at("2026-03-01"))
    during = summary(member, now=at("2026-03-10"))
    assert (during["available"], during["pending"], during["lifetime"]) == (100, 1000, 1000)
    assert during["qualified_tier"].code == "silver"
    after = summary(member, now=at("2026-03-15", 13))
    assert (after["available"], after["pending"]) == (1100, 0)


def test_P5_pending_points_cannot_be_spent(member, buy, staff):
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=14)
    buy(member, "500", when=at("2026-03-01"))
    with pytest.raises(ValidationError, match="only 0 available"):
        adjust_points(member=member, points=-1, reason="test", by=staff, now=at("2026-03-02"))


def test_P5_return_of_pending_points_stays_pending(member, buy):
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=14)
    purchase = buy(member, "500", when=at("2026-03-01"))
    give_return(member, purchase, "100", when=at("2026-03-03"))
    s = summary(member, now=at("2026-03-05"))
    assert (s["available"], s["pending"], s["lifetime"]) == (0, 400, 400)


# P6


def test_P6_negative_adjustment_beyond_available_is_refused_and_writes_nothing(member, buy, staff):
    buy(member, "300")
    before = ledger_state()
    with pytest.raises(ValidationError) as exc:
        adjust_points(member=member, points=-301, reason="Typo", by=staff)
    assert "Cannot remove 301 points" in str(exc.value) and "only 300 available" in str(exc.value)
    assert ledger_state() == before


def test_P6_adjustment_records_the_user_and_reason_and_is_available_at_once(member, staff):
    entry = adjust_points(member=member, points=250, reason="Damaged parcel", by=staff)
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.created_by, stored.reason, stored.kind) == (
        staff,
        "Damaged parcel",
        "adjustment",
    )
    s = summary(member, now=stored.issued_at)
    assert s["available"] == 250
    assert s["lifetime"] == 0  # the default definition does not count toward the tier


def test_P6_a_tier_counting_definition_moves_lifetime_points(member, staff):
    adjust_points(
        member=member,
        points=1000,
        reason="Missing purchase",
        by=staff,
        definition=definition("goodwill-tier-points"),
    )
    assert summary(member)["qualified_tier"].code == "silver"


@pytest.mark.parametrize(
    "points, reason, message",
    [(0, "x", "other than zero"), (1.5, "x", "whole number"), (10, "  ", "Say why")],
)
def test_P6_adjustment_needs_whole_points_and_a_reason(member, staff, points, reason, message):
    with pytest.raises(ValidationError, match=message):
        adjust_points(member=member, points=points, reason=reason, by=staff)


def test_P6_adjustment_needs_a_staff_user(member):
    with pytest.raises(ValidationError, match="staff user"):
        adjust_points(member=member, points=10, reason="x", by=None)


# P7


def test_P7_ledger_entries_cannot_be_changed_or_deleted_in_code(member, staff):
    entry = adjust_points(member=member, points=10, reason="x", by=staff)
    entry.points = 1000
    with pytest.raises(ValidationError, match="append-only"):
        entry.save()
    with pytest.raises(ValidationError, match="append-only"):
        entry.delete()
    with pytest.raises(ValidationError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(points=1000)
    with pytest.raises(ValidationError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).points == 10


@postgres_only
@pytest.mark.parametrize("sql", ["UPDATE {t} SET points = 1000", "DELETE FROM {t}"])
def test_P7_the_database_refuses_update_and_delete_of_ledger_rows(member, staff, sql):
    adjust_points(member=member, points=10, reason="x", by=staff)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.format(t=LedgerEntry._meta.db_table))
    assert LedgerEntry.objects.get(member=member).points == 10


def test_P7_check_ledger_passes_when_caches_equal_the_ledger(member, buy, capsys):
    buy(member, "1234.56")
    call_command("check_ledger")
    assert "1 members checked, all equal the ledger" in capsys.readouterr().out


def test_P7_check_ledger_names_members_whose_cache_differs(make_member, buy, capsys):
    good, bad = make_member(), make_member()
    buy(good, "100")
    buy(bad, "100")
    Member.objects.filter(pk=bad.pk).update(points_balance=99)
    with pytest.raises(SystemExit) as exc:
        call_command("check_ledger")
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert bad.external_id in err and good.external_id not in err
    assert "balance 99, ledger 100" in err


def test_P7_check_ledger_repair_rebuilds_caches_from_the_ledger(member, buy, capsys):
    buy(member, "1000")
    Member.objects.filter(pk=member.pk).update(lifetime_points=5, points_balance=5)
    with pytest.raises(SystemExit):
        call_command("check_ledger", "--repair")
    call_command("check_ledger")
    s = summary(member)
    assert (s["lifetime"], s["available"], s["qualified_tier"].code) == (1000, 1100, "silver")


def test_P7_a_tier_up_purchase_writes_its_transaction_entries_and_caches_together(member, buy):
    # given a Bronze member (the write path differs on PostgreSQL: the rows must not)
    # when a purchase takes it to Silver
    txn = buy(member, "1000.50", external_id="T-UP", store="S-1", channel="pos")
    # then the transaction, its earn entry and the bonus are written, linked to it
    saved = Transaction.objects.get(pk=txn.pk)
    assert (saved.external_id, saved.member_id, saved.amount, saved.store, saved.channel) == (
        "T-UP",
        member.pk,
        Decimal("1000.50"),
        "S-1",
        "pos",
    )
    assert saved.occurred_at == txn.occurred_at and not txn._state.adding
    entries = list(
        LedgerEntry.objects.filter(member=member)
        .order_by("pk")
        .values_list("kind", "points", "counts_toward_tier", "redeemable", "transaction", "reason")
    )
    assert entries == [
        ("earn", 1000, True, True, txn.pk, "Bronze x1"),
        ("bonus", 100, False, True, txn.pk, "Welcome to Silver"),
    ]
    # and the member's caches and tiers are saved with them
    member.refresh_from_db()
    assert (member.points_balance, member.lifetime_points, member.last_purchase_at) == (
        1100,
        1000,
        txn.occurred_at,
    )
    assert member.qualified_tier.code == member.effective_tier.code == member.best_tier.code
    assert member.qualified_tier.code == "silver"
    assert member.tier_changes.get(reason="upgrade").to_tier.code == "silver"


# P8


def test_P8_the_same_external_id_twice_changes_nothing(member, buy):
    first = buy(member, "100", external_id="T-1001")
    before = ledger_state()
    again = buy(member, "100.00", external_id="T-1001")
    assert again.pk == first.pk and again.skipped
    assert ledger_state() == before


@pytest.mark.parametrize("change", [{"amount": "101"}, {"when": at("2026-03-03")}, {"store": "S2"}])
def test_P8_the_same_external_id_with_other_content_raises(member, buy, change):
    buy(member, "100", external_id="T-1002")
    before = ledger_state()
    kwargs = {"amount": "100", **change}
    with pytest.raises(ValidationError, match="already recorded with another"):
        buy(member, kwargs.pop("amount"), external_id="T-1002", **kwargs)
    assert ledger_state() == before


def test_P8_an_external_id_of_another_member_raises(make_member, buy):
    a, b = make_member(), make_member()
    buy(a, "100", external_id="T-1003")
    with pytest.raises(ValidationError, match="another member"):
        buy(b, "100", external_id="T-1003")


def test_P8_return_and_action_are_idempotent_too(member, buy):
    purchase = buy(member, "100")
    give_return(member, purchase, "10", external_id="R-9")
    assert give_return(member, purchase, "10", external_id="R-9").skipped
    referral = definition("refer-a-friend")
    kwargs = dict(
        member=member, definition=referral, occurred_at=at("2026-03-01"), external_id="A-9"
    )
    award_action(**kwargs)
    assert award_action(**kwargs).skipped
    assert summary(member)["lifetime"] == 100 - 10 + 200


def test_summary_names_the_next_tier_and_the_points_to_reach_it(member, buy):
    buy(member, "2500")
    s = summary(member)
    assert (s["next_tier"].code, s["points_to_next_tier"]) == ("gold", 500)
    buy(member, "10000")
    assert summary(member)["next_tier"] is None


def test_T1_rank_is_the_order_by_threshold_not_by_name(tiers, member, buy):
    Tier.objects.filter(code="platinum").update(threshold=1500)
    Tier.objects.filter(code="silver").update(threshold=1200)
    buy(member, "1600", when=at("2026-03-01") - timedelta(days=1))
    assert summary(member)["qualified_tier"].code == "platinum"


# What a transaction may be: a plain amount up to the maximum, a time in the programme


def _purchase(member, amount="10", when=None, external_id="T-1"):
    from points.services import record_purchase

    return record_purchase(
        member=member, amount=amount, occurred_at=when or at("2026-03-01"), external_id=external_id
    )


@pytest.mark.parametrize(
    "amount", ["1_000", "١٢", "1e2", "+12", " 12", "12 ", "12.", ".5", "NaN", "Infinity", "0x10"]
)
def test_P2_an_amount_is_a_plain_decimal(member, amount):
    before = ledger_state()
    with pytest.raises(ValidationError, match="is not an amount"):
        _purchase(member, amount)
    assert ledger_state() == before


def test_P2_an_amount_may_be_a_decimal_or_whole_number(member):
    assert _purchase(member, Decimal("1E+2"), external_id="T-1").amount == 100
    assert _purchase(member, 12, external_id="T-2").amount == 12
    with pytest.raises(ValidationError, match="not a float"):
        _purchase(member, 12.5, external_id="T-3")


def test_P2_an_amount_above_max_transaction_amount_is_refused_naming_the_limit(
    member, buy, settings
):
    settings.MAX_TRANSACTION_AMOUNT = Decimal("1000.00")
    purchase = buy(member, "1000.00")
    before = ledger_state()
    message = "1000.01 is more than the 1,000.00 allowed in one transaction"
    with pytest.raises(ValidationError, match=message):
        _purchase(member, "1000.01", external_id="T-2")
    with pytest.raises(ValidationError, match=message):
        give_return(member, purchase, "1000.01")
    assert ledger_state() == before


@pytest.mark.parametrize("service", ["purchase", "return", "action"])
def test_a_transaction_is_dated_between_the_programme_start_and_a_day_ahead(
    member, settings, service
):
    from datetime import UTC, date, datetime

    from django.utils import timezone

    # given a programme that began on 1 January 2010 (midnight in Madrid), and for
    # returns a purchase of its first moment
    settings.PROGRAMME_START = date(2010, 1, 1)
    start = at("2010-01-01", 0)
    original = _purchase(member, "100", when=start, external_id="P-0")

    def record(when, external_id):
        if service == "purchase":
            return _purchase(member, "10", when=when, external_id=external_id)
        if service == "return":
            return give_return(member, original, "5", when=when, external_id=external_id)
        return award_action(
            member=member,
            definition=definition("refer-a-friend"),
            occurred_at=when,
            external_id=external_id,
        )

    # when / then
    refused = {
        datetime(1, 1, 1, tzinfo=UTC): "is before the programme began \\(1 January 2010\\)",
        start - timedelta(seconds=1): "is before the programme began",
        at("9999-12-30"): "is more than a day in the future",
        timezone.now() + timedelta(days=1, minutes=1): "is more than a day in the future",
    }
    for n, (when, reason) in enumerate(refused.items()):
        before = ledger_state()
        with pytest.raises(ValidationError, match=reason):
            record(when, f"X-{n}")
        assert ledger_state() == before
    # the programme's first moment and a till whose clock runs a little ahead are fine
    record(start, "A-1")
    record(timezone.now() + timedelta(hours=23), "A-2")
    assert Member.objects.get(pk=member.pk).last_purchase_at < timezone.now() + timedelta(days=1)
