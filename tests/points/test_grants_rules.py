"""Point grants: a file of manual adjustments (P6 per row), attributed to the staff
user who uploads it: what each row gives or takes, and of which definition."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Notification, TierChange
from points.models import LedgerEntry, PointDefinition
from points.services import adjust_points
from tests.conftest import at, definition, summary
from tests.points.grant_files import NOW, available, grant, state

pytestmark = pytest.mark.django_db


def test_grants_are_available_at_once_and_by_default_do_not_count_toward_the_tier(
    alice, bob, staff
):
    # when
    report = grant("G-1,M-0001,250,Damaged parcel,\nG-2,M-0002,40,Late delivery,\n", by=staff)

    # then
    assert (report.new, report.skipped, report.errors, report.points) == (2, 0, [], 290)
    assert (available(alice), available(bob)) == (250, 40)
    assert summary(alice)["lifetime"] == 0
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert (entry.kind, entry.points, entry.definition.handle, entry.member) == (
        "adjustment",
        250,
        "manual-adjustment",
        alice,
    )
    call_command("check_ledger")


def test_grants_are_attributed_to_the_uploader(alice, staff):
    # when
    grant("G-1,M-0001,250,  Damaged parcel  ,\n", by=staff)

    # then
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert (entry.created_by, entry.reason, entry.issued_at, entry.accrue_at) == (
        staff,
        "Damaged parcel",
        NOW,
        NOW,
    )


def test_grants_need_a_staff_user(alice, django_user_model):
    customer = django_user_model.objects.create_user("customer")
    with pytest.raises(ValidationError, match="not a staff user"):
        grant("G-1,M-0001,250,Goodwill,\n", by=customer)
    with pytest.raises(ValidationError, match="must name the staff user"):
        grant("G-1,M-0001,250,Goodwill,\n", by=None)
    assert not LedgerEntry.objects.exists()


def test_a_negative_grant_may_not_take_the_balance_below_zero(alice, bob, staff, buy):
    # given: 100 points available to each
    buy(alice, "100", when=at("2026-03-01"))
    buy(bob, "100", when=at("2026-03-01"))
    before = state()

    # when: rows of one member apply in file order
    refused = grant("G-1,M-0001,-60,Typo,\nG-2,M-0001,-50,Typo,\n", by=staff)

    # then
    assert [str(e) for e in refused.errors] == [
        "line 3, points: Cannot remove 50 points: M-0001 has only 40 available"
    ]
    assert state() == before

    # when a grant before it gives the points back
    report = grant("G-1,M-0002,50,Welcome,\nG-2,M-0002,-150,Typo,\n", by=staff)

    # then
    assert report.errors == [] and available(bob) == 0


def test_pending_points_cannot_be_taken_by_a_negative_grant(alice, staff, buy):
    # given: 100 points pending for 30 days, 20 available
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=30)
    buy(alice, "100", when=at("2026-03-05"))
    adjust_points(member=alice, points=20, reason="Welcome", by=staff, now=at("2026-03-06"))

    # when
    report = grant("G-1,M-0001,-21,Typo,\n", by=staff)

    # then
    assert [str(e) for e in report.errors] == [
        "line 2, points: Cannot remove 21 points: M-0001 has only 20 available"
    ]
    assert grant("G-1,M-0001,-20,Typo,\n", by=staff).new == 1


def test_a_tier_counting_grant_raises_the_tier_once(alice, staff):
    # when: up to Silver, down again, up again in one file
    report = grant(
        "G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n"
        "G-2,M-0001,-500,Typo,goodwill-tier-points\n"
        "G-3,M-0001,600,Missed purchase,goodwill-tier-points\n",
        by=staff,
    )

    # then: Silver, with its tier-up bonus (100) paid once, attributed to the uploader
    assert report.errors == [] and report.tier_changes == 1
    s = summary(alice)
    assert (s["qualified_tier"].code, s["lifetime"], s["available"]) == ("silver", 1300, 1400)
    bonus = LedgerEntry.objects.get(member=alice, kind="bonus")
    assert (bonus.points, bonus.created_by, bonus.external_id) == (100, staff, None)
    changes = TierChange.objects.filter(member=alice).exclude(reason="joined").order_by("pk")
    assert [(c.reason, c.created_by) for c in changes] == [("manual", staff)] * 3
    assert Notification.objects.filter(member=alice, kind="tier_up").count() == 1
    call_command("check_ledger")


def test_a_definition_named_in_another_case_is_that_definition(alice, staff):
    """An uploader types the handle as it reads ("Goodwill-Tier-Points"): handles are
    unique whatever their case, so the row grants by goodwill-tier-points, and the
    same file with the handle's own case grants nothing more."""
    # when
    first = grant("G-1,M-0001,1200,Missed purchase,Goodwill-Tier-Points\n", by=staff)
    again = grant("G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n", by=staff)

    # then: tier-counting, Silver with its bonus, granted once
    assert (first.new, first.errors) == (1, [])
    assert (again.new, again.skipped, again.errors) == (0, 1, [])
    s = summary(alice)
    assert (s["qualified_tier"].code, s["lifetime"], s["available"]) == ("silver", 1200, 1300)
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert entry.definition == definition("goodwill-tier-points")


@pytest.mark.parametrize(
    "handle, column, message",
    [
        ("purchase-points", "definition", "Purchase points is earned by purchases"),
        ("tier-up-bonus", "definition", "Tier-up bonus is written by the programme itself"),
        ("opening-balance", "definition", "Opening balance is written by the programme itself"),
        ("switched-off", "definition", "Old goodwill is switched off"),
        ("refer", "points", "Refer a friend is worth 200 points"),
    ],
)
def test_the_definition_must_be_a_bonus_or_action_definition(alice, staff, handle, column, message):
    # given
    PointDefinition.objects.create(name="Old goodwill", handle="switched-off", kind="bonus")
    PointDefinition.objects.filter(handle="switched-off").update(is_active=False)
    PointDefinition.objects.create(name="Refer a friend", handle="refer", kind="action", points=200)

    # when
    report = grant(f"G-1,M-0001,250,Goodwill,{handle}\n", by=staff)

    # then
    assert [(e.line, e.column) for e in report.errors] == [(2, column)]
    assert message in report.errors[0].reason
    assert not LedgerEntry.objects.exists()

    # and adjust_points, which shares the rule, refuses it too
    with pytest.raises(ValidationError, match=message):
        adjust_points(member=alice, points=250, reason="x", by=staff, definition=definition(handle))


def test_an_action_definition_gives_exactly_its_points(alice, staff):
    PointDefinition.objects.create(name="Refer a friend", handle="refer", kind="action", points=200)
    report = grant("G-1,M-0001,200,Referral,refer\nG-2,M-0001,-200,Wrong friend,refer\n", by=staff)
    assert report.new == 2 and available(alice) == 0


def test_the_example_of_the_rules_a_grant_to_gold_then_a_correction(make_member, staff):
    # given: M-00042 is Silver with 2,900 lifetime points and 320 available
    m42, m77 = make_member("M-00042"), make_member("M-00077")
    counting = definition("goodwill-tier-points")
    adjust_points(member=m42, points=2900, reason="x", by=staff, definition=counting, now=NOW)
    adjust_points(member=m42, points=-2680, reason="x", by=staff, now=NOW)  # 3,000 with the bonus
    assert (available(m42), summary(m42)["qualified_tier"].code) == (320, "silver")
    rows = (
        "SPRING-1,M-00042,150,Spring apology campaign,goodwill-tier-points\n"
        "SPRING-2,M-00042,{points},Points given twice in March,\n"
        "SPRING-3,M-00077,50,Spring apology campaign,\n"
    )

    # when / then: the correction is more than the first row and the Gold bonus leave
    refused = grant(rows.format(points=-800), by=staff)
    assert [str(e) for e in refused.errors] == [
        "line 3, points: Cannot remove 800 points: M-00042 has only 720 available"
    ]

    # when / then: a smaller one is granted
    assert grant(rows.format(points=-400), by=staff).new == 3
    s = summary(m42, now=NOW)
    assert (s["qualified_tier"].code, s["available"], s["lifetime"]) == ("gold", 320, 3050)
    assert available(m77) == 50
    assert grant(rows.format(points=-400), by=staff).skipped == 3
