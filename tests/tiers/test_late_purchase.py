"""D3 for a purchase that reaches the programme late (a till back online, a file
imported late): it restores the tier its date leaves, counting inactivity from it (D2),
as tonight's degradation run would give it, so that run has nothing to undo.

Degradation with the defaults: 90 days make a period, one tier per period. A purchase
is recorded as a till records it, at the current time; the dates around it count back
from today, at noon in the programme's time zone (clear of midnight and clock changes)."""

import io
from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Notification, TierChange
from members.services import send_pending_notifications
from points.models import Transaction
from points.resources import read_transactions
from points.services import import_transactions, record_purchase
from tests.conftest import earned, postgres_only
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


def noon(days_ago: int) -> datetime:
    """Noon of the day `days_ago` days before today, in the programme's time zone."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(12)))


def night(days_ago: int) -> datetime:
    """The nightly degradation run (03:15) of the day `days_ago` days before today
    (-1: tonight's, early tomorrow)."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(3, 15)))


TONIGHT = -1


def tiers_of(member) -> tuple[str, str]:
    m = Member.objects.get(pk=member.pk)
    return m.qualified_tier.code, m.effective_tier.code


def changes(member) -> list[tuple]:
    """The member's tier history in the order it was recorded: (reason, from, to)."""
    rows = TierChange.objects.filter(member=member).exclude(reason="joined").order_by("pk")
    return [(c.reason, c.from_tier.code, c.to_tier.code) for c in rows]


def messages(member) -> list[str]:
    told = Notification.objects.filter(member=member).order_by("pk")
    return list(told.values_list("kind", flat=True))


def late_purchase(member, amount: str, days_ago: int, external_id="P-LATE") -> Transaction:
    """A purchase made `days_ago` days ago at noon, recorded now (no `now`: the default)."""
    return record_purchase(
        member=member,
        amount=amount,
        occurred_at=noon(days_ago),
        external_id=external_id,
        channel="pos",
    )


@pytest.fixture
def gold_since(make_member, buy, degradation):
    """A member made Gold by a purchase `days_ago` days ago (their last), degraded by
    the nightly runs as their inactivity says, and told (the messages sent)."""

    def gold(days_ago: int, *, told=True):
        member = make_member(joined_at=noon(400))
        buy(member, "3000", when=noon(days_ago), external_id=f"P-GOLD-{days_ago}")
        for period in (1, 2):  # the run after each full period ends, if it has
            ended = days_ago - 90 * period
            if ended > 0:
                degrade_inactive_members(now=night(ended - 1))
        if told:
            send_pending_notifications()
        return member

    return gold


def test_D3_a_purchase_100_days_old_restores_one_of_the_two_tiers_lost(gold_since):
    # given: Gold, last purchase 200 days ago: Silver after 90 days, Bronze after 180,
    # told both times
    member = gold_since(200)
    assert tiers_of(member) == ("gold", "bronze")

    # when: a purchase made 100 days ago reaches the programme today
    purchase = late_purchase(member, "100", 100)

    # then: counted from it, 100 days without a purchase is one full period: Silver,
    # not Gold; the purchase earns at Silver (x1.5), and the member is told so honestly
    assert tiers_of(member) == ("gold", "silver")
    assert earned(purchase) == 150
    assert changes(member)[-1] == ("restoration", "bronze", "silver")
    assert TierChange.objects.filter(member=member).latest("pk").qualified_tier.code == "gold"
    assert messages(member)[-1] == "restoration"
    mail.outbox.clear()
    assert send_pending_notifications() == 1
    (sent,) = mail.outbox
    assert sent.subject == "Welcome back! Your purchase brings you up to Silver."
    day = f"{noon(100):%-d %B %Y}"
    assert f"Thank you for your purchase of {day}." in sent.body
    assert "for now it brings you up to the benefits of Silver, and it earns Silver points" in (
        sent.body
    )
    assert "Your Gold tier is still yours: your next purchase brings it back at once" in (sent.body)


def test_D2_D3_the_nightly_run_after_a_late_purchase_changes_nothing(gold_since):
    # given: the purchase of 100 days ago restored Silver to the member at Bronze
    member = gold_since(200)
    late_purchase(member, "100", 100)
    history, told = changes(member), messages(member)

    # when: tonight's run, then one three days late
    moved = [degrade_inactive_members(now=night(TONIGHT)), degrade_inactive_members(now=night(-3))]

    # then: neither has anything to do: no "We miss you" the day after "Welcome back"
    assert moved == [0, 0]
    assert tiers_of(member) == ("gold", "silver")
    assert (changes(member), messages(member)) == (history, told)


def test_D3_a_late_purchase_that_leaves_the_tier_the_member_holds_changes_nothing(gold_since):
    # given: Gold, last purchase 150 days ago: Silver since the 90th day, told
    member = gold_since(150)
    assert tiers_of(member) == ("gold", "silver")
    history, told = changes(member), messages(member)

    # when: a purchase made 100 days ago reaches the programme today
    purchase = late_purchase(member, "100", 100)

    # then: counted from it, the member is Silver, as they are: no restoration, no
    # message; the purchase earns at Silver; tonight's run has nothing to do
    assert tiers_of(member) == ("gold", "silver")
    assert earned(purchase) == 150
    assert (changes(member), messages(member)) == (history, told)
    assert degrade_inactive_members(now=night(TONIGHT)) == 0
    assert (changes(member), messages(member)) == (history, told)


def test_D3_a_purchase_within_the_period_restores_the_qualified_tier_as_ever(gold_since):
    # given: Gold at Bronze, last purchase 200 days ago
    member = gold_since(200)

    # when: a purchase made 30 days ago reaches the programme today
    purchase = late_purchase(member, "100", 30)

    # then: fully restored, earning Gold's x2, "Welcome back"; tonight's run agrees
    assert tiers_of(member) == ("gold", "gold")
    assert earned(purchase) == 200
    assert changes(member)[-1] == ("restoration", "bronze", "gold")
    mail.outbox.clear()
    send_pending_notifications()
    assert [m.subject for m in mail.outbox] == ["Welcome back! You are Gold again."]
    assert degrade_inactive_members(now=night(TONIGHT)) == 0


@pytest.mark.parametrize("days_ago, tier", [(90, "silver"), (89, "gold")])
def test_D3_a_purchase_whose_period_ends_today_restores_what_tonights_run_leaves(
    gold_since, days_ago, tier
):
    # given: Gold at Bronze, last purchase 200 days ago
    member = gold_since(200)

    # when: a purchase made 90 days ago (its period ends today: tonight's run would
    # drop the member a tier), or 89 (it ends tomorrow), reaches the programme today
    late_purchase(member, "100", days_ago)

    # then: the member holds the tier tonight's run gives, and that run changes nothing
    assert tiers_of(member) == ("gold", tier)
    history = changes(member)
    assert degrade_inactive_members(now=night(TONIGHT)) == 0
    assert changes(member) == history


def test_D4_a_late_purchase_before_we_miss_you_went_keeps_the_drop_that_stays(gold_since):
    # given: Gold, last purchase 200 days ago, dropped to Silver then Bronze while the
    # mail server was down: neither "We miss you" has gone
    member = gold_since(200, told=False)
    assert messages(member) == ["tier_up", "degradation", "degradation"]

    # when: a purchase made 100 days ago brings the member back to Silver, and the
    # server is back
    late_purchase(member, "100", 100)
    mail.outbox.clear()
    send_pending_notifications()

    # then: the member hears they are at Silver, Gold still theirs: the drop to Bronze,
    # undone before they heard of it, is not told, nor its undoing; the history keeps all
    assert [m.subject for m in mail.outbox] == [
        "Welcome to Gold, and thank you!",
        "We miss you. Your Gold tier is still here.",
    ]
    assert "for now you enjoy the benefits of Silver" in mail.outbox[1].body
    assert changes(member)[-3:] == [
        ("degradation", "gold", "silver"),
        ("degradation", "silver", "bronze"),
        ("restoration", "bronze", "silver"),
    ]


def test_D4_a_member_told_of_the_first_drop_only_is_welcomed_back(make_member, buy, degradation):
    # given: Gold, last purchase 200 days ago; told of the drop to Silver, then dropped
    # to Bronze while the mail server was down
    member = make_member(joined_at=noon(400))
    buy(member, "3000", when=noon(200))
    degrade_inactive_members(now=night(109))
    send_pending_notifications()
    degrade_inactive_members(now=night(19))

    # when: a purchase made 30 days ago restores Gold, and the server is back
    late_purchase(member, "100", 30)
    mail.outbox.clear()
    send_pending_notifications()

    # then: the drop to Bronze, undone, is not told; the member, who last heard of
    # Silver, is welcomed back to Gold
    assert tiers_of(member) == ("gold", "gold")
    assert [m.subject for m in mail.outbox] == ["Welcome back! You are Gold again."]


def test_D3_a_late_purchase_in_an_imported_file_restores_as_a_till_would(gold_since):
    # given: Gold at Bronze, last purchase 200 days ago
    member = gold_since(200)

    # when: a file brings the purchase made 100 days ago
    text = (
        "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
        f"T-LATE,{member.external_id},purchase,100,{noon(100).isoformat()},pos,,\n"
    )
    rows, errors = read_transactions(io.BytesIO(text.encode()))
    report = import_transactions(rows, errors=errors)

    # then: Silver, earning x1.5, one restoration; tonight's run changes nothing
    assert report.errors == []
    assert tiers_of(member) == ("gold", "silver")
    assert earned(Transaction.objects.get(external_id="T-LATE")) == 150
    assert changes(member)[-1] == ("restoration", "bronze", "silver")
    assert degrade_inactive_members(now=night(TONIGHT)) == 0
    assert tiers_of(member) == ("gold", "silver")


def test_X2_a_partial_restoration_says_why_on_the_member_page(admin_client, gold_since):
    # given: Gold at Bronze; a purchase made 100 days ago brought the member to Silver
    member = gold_since(200)
    late_purchase(member, "100", 100)

    # when
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    # then: the history does not say the qualified tier came back
    day = f"{noon(100):%-d %b %Y}"
    assert (
        f"Silver from {day}: a purchase restored Silver, as the days since it leave it; "
        "qualified for Gold, a purchase restores it"
    ) in page.content.decode()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("last_bought, told", [(200, "restoration"), (150, None)])
def test_D3_a_late_purchase_outside_a_transaction_restores_as_inside(gold_since, last_bought, told):
    # given: Gold at Bronze (last purchase 200 days ago) or at Silver (150 days ago);
    # a till's purchase is recorded outside any transaction, where the common purchase
    # is written without the member lock
    member = gold_since(last_bought)
    before = messages(member)

    # when: a purchase made 100 days ago reaches the programme
    purchase = late_purchase(member, "100", 100)

    # then: Silver, earning x1.5, told only of a change
    assert tiers_of(member) == ("gold", "silver")
    assert earned(purchase) == 150
    assert messages(member) == before + ([told] if told else [])
