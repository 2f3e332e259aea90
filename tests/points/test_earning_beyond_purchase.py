"""DESIGN.md, "Earning beyond the purchase": birthday-month campaigns, store and
minimum-amount audiences, welcome points on enrolment and referrals."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from members.models import Member
from members.services import enroll_member
from points.models import AwardedOn, Campaign, LedgerEntry, PointDefinition
from points.services import award_action, record_return
from tests.conftest import MADRID, at, definition, earned, ledger_state, postgres_only, run_together
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def campaign(name="Campaign", multiplier="2", **limits):
    return Campaign.objects.create(
        name=name,
        multiplier=Decimal(multiplier),
        starts_at=at("2026-01-01", 0),
        ends_at=at("2027-01-01", 0),
        **limits,
    )


def born(member, day: date):
    member.birth_date = day
    member.save(update_fields=["birth_date"])
    return member


def welcome(points=50, **fields):
    return PointDefinition.objects.create(
        name="Welcome points",
        handle="welcome",
        kind="action",
        points=points,
        counts_toward_tier=False,
        awarded_on=AwardedOn.ENROLMENT,
        **fields,
    )


def enrol(code, **fields):
    return enroll_member(external_id=code, email=f"{code.lower()}@example.com", **fields)


# Birthday month


def test_birthday_campaign_applies_only_in_the_members_birthday_month(member, buy):
    # given a birthday campaign x2 and a member born on 14 March
    campaign("Birthday", birthday_month_only=True)
    born(member, date(1990, 3, 14))
    # when they buy for 100 in March and in April
    in_march = buy(member, "100", at("2026-03-31"))
    in_april = buy(member, "100", at("2026-04-01"))
    # then only March's purchase earns double
    assert (earned(in_march), earned(in_april)) == (200, 100)


def test_birthday_campaign_gives_nothing_to_a_member_without_a_birth_date(member, buy):
    campaign("Birthday", birthday_month_only=True)
    assert earned(buy(member, "100", at("2026-03-31"))) == 100


def test_birthday_month_is_the_month_in_the_programmes_time_zone(member, buy):
    # given a member born in April: 31 March 23:30 UTC is already 1 April in Madrid
    campaign("Birthday", birthday_month_only=True)
    born(member, date(1990, 4, 2))
    when = datetime.fromisoformat("2026-03-31T23:30:00+00:00")
    assert when.astimezone(MADRID).month == 4
    # then the purchase is in their birthday month
    assert earned(buy(member, "100", when)) == 200


def test_seed_example_gold_member_in_birthday_month_in_double_weekend_earns_x8(member, buy):
    # given a Gold member (x2) born in March, a birthday campaign x2 and a x2 weekend
    gold = Tier.objects.get(code="gold")
    member.qualified_tier = member.effective_tier = member.best_tier = gold
    member.lifetime_points = 3_000
    member.save()
    LedgerEntry.objects.create(
        member=member,
        kind="adjustment",
        points=3_000,
        counts_toward_tier=True,
        redeemable=False,
        issued_at=at("2026-01-02"),
        accrue_at=at("2026-01-02"),
        reason="Reached Gold before",
    )
    born(member, date(1985, 3, 20))
    birthday = campaign("Birthday double points", birthday_month_only=True)
    weekend = Campaign.objects.create(
        name="Double points weekend",
        multiplier=2,
        starts_at=at("2026-03-07", 0),
        ends_at=at("2026-03-09", 0),
    )
    # when they buy for 100 on Saturday 7 March
    purchase = buy(member, "100", at("2026-03-07"))
    # then they earn x8: tier x2, birthday x2, weekend x2
    assert earned(purchase) == 800
    entry = LedgerEntry.objects.get(transaction=purchase)
    assert entry.reason == "Gold x2, Double points weekend x2, Birthday double points x2"
    # and each campaign added what the purchase earns above what it would without it
    assert entry.campaign_points == {str(birthday.pk): 400, str(weekend.pk): 400}


# Stores and minimum amount


def test_store_campaign_applies_only_to_purchases_in_its_stores(member, buy):
    campaign("Flagship", stores=["STORE-01", "STORE-02"])
    assert earned(buy(member, "100", store="STORE-02")) == 200
    assert earned(buy(member, "100", store="STORE-03")) == 100
    assert earned(buy(member, "100")) == 100  # no store named: not in its stores


def test_min_amount_campaign_below_the_minimum_earns_no_campaign_multiplier(member, buy):
    campaign("Big basket", min_amount=Decimal("100.00"))
    assert earned(buy(member, "99.99")) == 99
    assert earned(buy(member, "100.00")) == 200


def test_campaign_audiences_compose_with_tiers_and_channels(member, buy):
    campaign("All limits", stores=["STORE-01"], min_amount=Decimal(50), channels=["pos"])
    assert earned(buy(member, "60", store="STORE-01", channel="pos")) == 120
    assert earned(buy(member, "60", store="STORE-01", channel="ecommerce")) == 60


def test_campaign_min_amount_must_be_positive(tiers):
    with pytest.raises(ValidationError, match="minimum amount must be above 0"):
        Campaign(
            name="Zero",
            multiplier=2,
            starts_at=at("2026-01-01"),
            ends_at=at("2026-02-01"),
            min_amount=Decimal(0),
        ).full_clean()


# Welcome points


def test_welcome_points_are_given_once_on_enrolment(tiers, no_campaigns):
    # given welcome points of 50, available after 3 days
    welcome(accrue_delay_days=3)
    # when a customer enrols
    member = enrol("M-W1", joined_at=at("2026-03-01"))
    # then they have 50 pending points, issued when they joined
    entry = LedgerEntry.objects.get(member=member)
    assert (entry.points, entry.kind, entry.issued_at) == (50, "earn", at("2026-03-01"))
    assert entry.accrue_at == at("2026-03-01") + timedelta(days=3)
    member.refresh_from_db()
    assert member.points_balance == 50
    # and enrolling the same code again gives nothing more
    with pytest.raises(ValidationError, match="already exists"):
        enrol("M-W1")
    assert LedgerEntry.objects.filter(member=member).count() == 1


def test_no_welcome_points_without_an_active_enrolment_definition(tiers, no_campaigns):
    welcome(is_active=False)
    member = enrol("M-W2")
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_only_one_active_definition_per_occasion(tiers):
    welcome()
    with pytest.raises(IntegrityError), transaction.atomic():
        PointDefinition.objects.create(
            name="Other welcome", handle="w2", kind="action", points=5, awarded_on="enrolment"
        )


def test_programme_awards_are_fixed_actions(tiers):
    bad = PointDefinition(name="Bonus", handle="b", kind="bonus", awarded_on="referral")
    with pytest.raises(ValidationError, match="choose the kind Action"):
        bad.full_clean()


def test_a_caller_cannot_award_what_the_programme_gives(member):
    with pytest.raises(ValidationError, match="given by the programme itself"):
        award_action(
            member=member,
            definition=definition("refer-a-friend"),
            occurred_at=at("2026-03-01"),
            external_id="A-REF",
        )


# Referral


@pytest.fixture
def referrer(make_member):
    return make_member("M-REFERRER", joined_at=at("2026-01-01"))


def test_referral_is_paid_at_the_friends_first_purchase_only(referrer, buy):
    # given a friend referred by M-REFERRER (refer-a-friend: 200 points, tier-counting)
    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    assert friend.referred_by == referrer
    assert LedgerEntry.objects.filter(member=referrer).count() == 0
    # when the friend buys twice
    first = buy(friend, "10", at("2026-03-02"), external_id="T-FIRST")
    buy(friend, "10", at("2026-03-03"))
    # then the referrer got 200 points once, at the first purchase
    paid = LedgerEntry.objects.get(member=referrer)
    assert (paid.points, paid.issued_at) == (200, first.occurred_at)
    assert paid.reason == "Referral: M-FRIEND made a first purchase (T-FIRST)"
    referrer.refresh_from_db()
    assert (referrer.points_balance, referrer.lifetime_points) == (200, 200)


def test_a_return_of_the_first_purchase_does_not_take_the_referral_back(referrer, buy):
    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    first = buy(friend, "10")
    record_return(
        member=friend,
        amount=Decimal(10),
        occurred_at=at("2026-03-05"),
        external_id="R-1",
        original_external_id=first.external_id,
    )
    referrer.refresh_from_db()
    assert referrer.points_balance == 200


def test_a_referral_is_never_dated_before_the_referrer_joined(make_member, buy):
    # given a referrer who joined on 5 March, and a friend's first purchase of 1 March
    referrer = make_member("M-LATE", joined_at=at("2026-03-05"))
    friend = enrol("M-EARLY", referred_by="M-LATE", joined_at=at("2026-02-01"))
    buy(friend, "10", at("2026-03-01"))
    # then the referral is issued when the referrer joined
    assert LedgerEntry.objects.get(member=referrer).issued_at == at("2026-03-05")


def test_a_referral_whose_friend_never_buys_gives_nothing(referrer):
    enrol("M-FRIEND", referred_by="M-REFERRER")
    referrer.refresh_from_db()
    assert referrer.points_balance == 0


@pytest.mark.parametrize("door", ["till", "file"])
def test_an_erased_referrer_is_not_paid(referrer, buy, staff, door):
    # given a friend of M-REFERRER, who is then erased (asked to be forgotten)
    from members.services import erase_member
    from tests.points.transaction_files import run as import_file

    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    erase_member(member=referrer, by=staff)
    # when the friend makes a first purchase
    if door == "till":
        buy(friend, "10", at("2026-03-02"))
    else:
        assert import_file("T-1,M-FRIEND,purchase,10,2026-03-02,,,\n").errors == []
    # then the erased account is paid nothing, as an erased code refers nobody at enrolment
    assert not LedgerEntry.objects.filter(member=referrer).exists()
    referrer.refresh_from_db()
    assert (referrer.points_balance, referrer.lifetime_points) == (0, 0)


@pytest.mark.parametrize("survivor_bought", [False, True])
def test_a_friend_merged_before_buying_pays_the_referral_at_the_first_purchase_kept(
    referrer, buy, staff, survivor_bought
):
    from members.services import merge_members

    # given a friend of M-REFERRER who never bought, merged into another account
    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    keep = enrol("M-KEEP")
    if survivor_bought:  # the customer had bought on the account kept: not a newcomer
        buy(keep, "10", at("2026-03-01"))
    merge_members(survivor=keep, duplicate=friend, by=staff, reason="Same customer")
    # when the customer buys on the account kept
    buy(Member.objects.get(pk=keep.pk), "10", at("2026-03-02"), external_id="T-KEPT")
    # then the referrer is paid once, unless the account kept had bought before
    paid = list(LedgerEntry.objects.filter(member=referrer).values_list("points", "reason"))
    if survivor_bought:
        assert paid == []
    else:
        assert paid == [(200, "Referral: M-KEEP made a first purchase (T-KEPT)")]


def test_a_member_cannot_refer_themselves(tiers):
    before = ledger_state()
    with pytest.raises(ValidationError, match="cannot refer themselves"):
        enrol("M-SELF", referred_by="M-SELF")
    assert ledger_state() == before


def test_an_unknown_referrer_is_refused_and_nothing_is_enrolled(tiers):
    with pytest.raises(ValidationError, match="No member with customer code M-NOBODY"):
        enrol("M-NEW", referred_by="M-NOBODY")
    assert not Member.objects.filter(external_id="M-NEW").exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_referral_is_paid_once_when_the_first_two_purchases_arrive_together(tiers):
    from points.services import record_purchase

    # given a referred friend who has never bought
    referrer = enrol("M-REFERRER")
    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    # when two first purchases arrive at the same moment, on two connections
    results = run_together(
        2,
        lambda i: record_purchase(
            member=friend,
            amount=Decimal("10"),
            occurred_at=at("2026-03-02"),
            external_id=f"T-RACE-{i}",
        ),
    )
    # then both are recorded and the referrer is paid exactly once
    assert all(not isinstance(r, Exception) for r in results), results
    assert LedgerEntry.objects.filter(member=referrer).count() == 1
    referrer.refresh_from_db()
    assert referrer.points_balance == 200


# The same rules through the imports


def test_the_transaction_import_applies_birthday_campaigns_and_pays_referrals(referrer, buy):
    from tests.points.transaction_files import run as import_file

    # given a friend of M-REFERRER born in March, and a birthday campaign x2
    campaign("Birthday", birthday_month_only=True)
    friend = enrol("M-FRIEND", referred_by="M-REFERRER", birth_date=date(1990, 3, 5))
    # when a file brings the friend's first purchases, in March and April
    report = import_file(
        "T-1,M-FRIEND,purchase,100,2026-03-10,pos,STORE-01,\n"
        "T-2,M-FRIEND,purchase,100,2026-04-10,pos,STORE-01,\n"
    )
    # then March earns double, April not, and the referrer is paid once, as by a till
    assert (report.new, report.errors) == (2, [])
    assert [e.points for e in LedgerEntry.objects.filter(member=friend).order_by("issued_at")] == [
        200,
        100,
    ]
    paid = LedgerEntry.objects.get(member=referrer)
    assert (paid.points, paid.reason) == (200, "Referral: M-FRIEND made a first purchase (T-1)")
    referrer.refresh_from_db()
    assert referrer.points_balance == 200
    # and a friend who bought before pays no referral through a later file
    import_file("T-3,M-FRIEND,purchase,100,2026-04-11,pos,,\n")
    assert LedgerEntry.objects.filter(member=referrer).count() == 1


def test_the_members_import_stores_birth_dates_and_gives_welcome_points(tiers, no_campaigns):
    from tests.points.member_files import run as import_members_file

    welcome()
    report = import_members_file("M-I1,i1@example.com,Ana,Ruiz,,2026-02-01,1990-03-05,,\n")
    assert report.errors == []
    member = Member.objects.get(external_id="M-I1")
    assert member.birth_date == date(1990, 3, 5)
    entry = LedgerEntry.objects.get(member=member)
    assert (entry.points, entry.definition.handle) == (50, "welcome")
    assert member.points_balance == 50
    # the same file again gives nothing more
    import_members_file("M-I1,i1@example.com,Ana,Ruiz,,2026-02-01,1990-03-05,,\n")
    assert LedgerEntry.objects.filter(member=member).count() == 1


def test_the_member_page_explains_welcome_and_referral_points(referrer, buy):
    from points.explanations import entry_explanation

    welcome()
    friend = enrol("M-FRIEND", referred_by="M-REFERRER")
    buy(friend, "10", external_id="T-9")
    welcomed = LedgerEntry.objects.get(member=friend, definition__handle="welcome")
    paid = LedgerEntry.objects.get(member=referrer)
    assert entry_explanation(welcomed) == "Welcome points: given once on enrolment"
    assert (
        entry_explanation(paid) == "Refer a friend: M-FRIEND made a first purchase (T-9), paid once"
    )
