"""D1-D4: degradation for inactivity, restoration by a purchase, notifications."""

import io
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import events
from members.models import Member, Notification, TierChange
from members.tasks import send_notifications_task
from points.services import adjust_points, award_action, record_return
from tests.conftest import at, definition, earned, give_return
from tiers.models import DegradationPolicy, Tier
from tiers.services import degrade_inactive_members, recalculate_all_tiers

pytestmark = pytest.mark.django_db

START = at("2026-01-01")


def tiers_of(member):
    m = Member.objects.get(pk=member.pk)
    return m.qualified_tier.code, m.effective_tier.code


@pytest.fixture
def gold(make_member, buy):
    member = make_member(joined_at=START - timedelta(days=1))
    buy(member, "3000", when=START, external_id="P-GOLD")
    return member


def test_D1_policy_is_one_row_off_by_default(db):
    policy = DegradationPolicy.current()
    assert (policy.enabled, policy.inactivity_days, policy.levels_per_step) == (False, 90, 1)
    assert DegradationPolicy.objects.count() == 1


def test_D1_nothing_changes_while_the_policy_is_disabled(gold):
    assert degrade_inactive_members(now=START + timedelta(days=400)) == 0
    assert tiers_of(gold) == ("gold", "gold")


def test_D2_90_days_inactive_drops_gold_to_silver(gold, degradation):
    # The 90 days since the purchase end on 1 April at noon: the run after that day
    # drops the member, not a run later that day (rules.md D2: whole days).
    assert degrade_inactive_members(now=START + timedelta(days=89)) == 0
    assert degrade_inactive_members(now=at("2026-04-01", 23)) == 0
    assert degrade_inactive_members(now=at("2026-04-02", 3)) == 1
    assert tiers_of(gold) == ("gold", "silver")


def test_D2_200_days_drops_two_levels(gold, degradation):
    degrade_inactive_members(now=START + timedelta(days=200))
    assert tiers_of(gold) == ("gold", "bronze")


def test_D2_levels_per_step(make_member, buy, degradation):
    degradation.levels_per_step = 2
    degradation.save()
    member = make_member(joined_at=START)
    buy(member, "8000", when=START)
    degrade_inactive_members(now=START + timedelta(days=95))
    assert tiers_of(member) == ("platinum", "silver")


def test_D2_never_below_the_lowest_tier(gold, make_member, degradation):
    bronze = make_member(joined_at=START - timedelta(days=900))
    degrade_inactive_members(now=START + timedelta(days=900))
    assert tiers_of(gold) == ("gold", "bronze")
    assert tiers_of(bronze) == ("bronze", "bronze")


def test_D2_inactivity_counts_from_joining_without_purchases(make_member, staff, degradation):
    member = make_member(joined_at=START)
    adjust_points(
        member=member,
        points=1000,
        reason="x",
        by=staff,
        definition=definition("goodwill-tier-points"),
    )
    degrade_inactive_members(now=START + timedelta(days=91))
    assert tiers_of(member) == ("silver", "bronze")


def test_D2_running_twice_or_late_gives_the_tiers_of_one_run_on_time(make_member, buy, degradation):
    members = []
    for days_ago in (10, 95, 185, 300):
        m = make_member(joined_at=START - timedelta(days=400))
        buy(m, "3000", when=START + timedelta(days=300 - days_ago))
        members.append(m)
    on_time = START + timedelta(days=300)
    for day in range(200, 301, 5):  # the daily job, every fifth day
        degrade_inactive_members(now=START + timedelta(days=day))
    expected = [tiers_of(m) for m in members]
    assert expected == [
        ("gold", "gold"),
        ("gold", "silver"),
        ("gold", "bronze"),
        ("gold", "bronze"),
    ]
    history = TierChange.objects.filter(reason="degradation").count()

    assert degrade_inactive_members(now=on_time) == 0  # twice
    assert degrade_inactive_members(now=on_time + timedelta(days=7)) == 0  # a week late
    assert [tiers_of(m) for m in members] == expected
    assert TierChange.objects.filter(reason="degradation").count() == history


def test_D2_a_late_first_run_lands_on_the_same_tier(gold, degradation):
    degrade_inactive_members(now=START + timedelta(days=187))
    assert tiers_of(gold) == ("gold", "bronze")
    assert TierChange.objects.filter(member=gold, reason="degradation").count() == 1


def test_D3_a_purchase_restores_at_once_and_earns_at_the_restored_multiplier(
    gold, buy, degradation
):
    degrade_inactive_members(now=START + timedelta(days=100))
    assert tiers_of(gold) == ("gold", "silver")
    purchase = buy(gold, "100", when=START + timedelta(days=101))
    assert tiers_of(gold) == ("gold", "gold")
    assert earned(purchase) == 200  # Gold x2, not Silver x1.5
    change = TierChange.objects.filter(member=gold).first()
    assert (change.reason, change.from_tier.code, change.to_tier.code) == (
        "restoration",
        "silver",
        "gold",
    )


def test_D3_returns_actions_and_adjustments_do_not_restore(gold, buy, staff, degradation):
    extra = buy(gold, "10", when=START + timedelta(days=1))
    degrade_inactive_members(now=START + timedelta(days=100))
    give_return(gold, extra, "5", when=START + timedelta(days=102))
    award_action(
        member=gold,
        definition=definition("write-a-review"),
        occurred_at=START + timedelta(days=103),
        external_id="A-D3",
    )
    adjust_points(member=gold, points=50, reason="goodwill", by=staff)
    assert tiers_of(gold) == ("gold", "silver")


def test_D2_a_return_below_the_threshold_lowers_a_degraded_member_from_the_new_tier(
    gold, buy, degradation
):
    # given: Gold, degraded to Silver after 100 days without a purchase
    degrade_inactive_members(now=START + timedelta(days=100))

    # when: a return takes her below Gold's threshold the next day
    record_return(
        member=gold,
        amount="100",
        occurred_at=START + timedelta(days=101),
        external_id="R-X",
        original_external_id="P-GOLD",
    )

    # then: one period below Silver, at once (D2), not Silver until the next run
    assert tiers_of(gold) == ("silver", "bronze")
    (row,) = TierChange.objects.filter(member=gold, reason="downgrade")
    assert (row.from_tier.code, row.to_tier.code) == ("silver", "bronze")
    assert degrade_inactive_members(now=START + timedelta(days=102)) == 0
    kinds = Notification.objects.filter(member=gold).values_list("kind", flat=True)
    assert list(kinds).count("degradation") == 1  # "We miss you" once


def test_D4_degradation_and_restoration_are_recorded_and_notify(gold, buy, degradation):
    degrade_inactive_members(now=START + timedelta(days=100))
    degrade_inactive_members(now=START + timedelta(days=101))
    assert send_notifications_task.delay().get() == 2  # the every-minute run, before the buy
    buy(gold, "10", when=START + timedelta(days=102))
    kinds = list(
        Notification.objects.filter(member=gold).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == ["tier_up", "degradation", "restoration"]

    assert send_notifications_task.delay().get() == 1
    subjects = [m.subject for m in mail.outbox]
    assert "We miss you. Your Gold tier is still here." in subjects
    assert "Welcome back! You are Gold again." in subjects
    assert "Welcome to Gold" in subjects[0]
    assert "250 points" in mail.outbox[0].body
    assert not Notification.objects.filter(sent_at=None).exists()
    assert send_notifications_task.delay().get() == 0


def test_D2_the_job_runs_the_same_queries_for_10_and_1000_members(make_member, buy, degradation):
    template = make_member(joined_at=START)
    buy(template, "3000", when=START)
    template.refresh_from_db()

    def add_gold_members(codes, last_purchase_at):
        Member.objects.bulk_create(
            Member(
                external_id=f"Q-{i}",
                email=f"q{i}@example.com",
                joined_at=START,
                last_purchase_at=last_purchase_at,
                qualified_tier_id=template.qualified_tier_id,
                effective_tier_id=template.effective_tier_id,
                best_tier_id=template.best_tier_id,
                lifetime_points=3000,
            )
            for i in codes
        )

    def queries_to_degrade(expected_members):
        events.subscriptions_changed()  # each run reads the endpoints, as a nightly one does
        with CaptureQueriesContext(connection) as ctx:
            assert degrade_inactive_members(now=START + timedelta(days=200)) == expected_members
        return len(ctx)

    add_gold_members(range(9), START)
    few = queries_to_degrade(10)
    add_gold_members(range(10, 1000), START + timedelta(days=1))
    assert queries_to_degrade(990) == few
    assert Member.objects.filter(effective_tier__code="bronze").count() == 1000


def test_preview_degradation_lists_moves_and_writes_nothing(gold, make_member, capsys):
    make_member(joined_at=START + timedelta(days=150))
    call_command("preview_degradation", "--date", "2026-04-15")
    out = capsys.readouterr().out
    assert f"{gold.external_id}: Gold -> Silver (qualified Gold)" in out
    assert "1 member would drop." in out
    assert "0 members skipped (a status match or a freeze).\n" in out  # no list announced
    assert "policy disabled" in out
    assert tiers_of(gold) == ("gold", "gold")
    assert not TierChange.objects.filter(reason="degradation").exists()


def test_preview_and_job_agree(gold, make_member, buy, degradation, capsys):
    call_command("preview_degradation", "--date", "2026-07-20")
    out = capsys.readouterr().out
    moved = degrade_inactive_members(now=at("2026-07-20", 23))
    assert moved == 1 and "1 member would drop." in out
    assert tiers_of(gold) == ("gold", "bronze") and "Gold -> Bronze" in out


def test_a_preview_takes_a_date_ten_calendar_years_ahead(tiers):
    today = timezone.localdate()
    leap_day = (today.month, today.day) == (2, 29)
    last = date(today.year + 10, 2, 28) if leap_day else today.replace(year=today.year + 10)
    out = io.StringIO()

    call_command("preview_expiry", "--date", f"{last:%Y-%m-%d}", stdout=out)

    assert out.getvalue()
    with pytest.raises(CommandError, match="more than ten years ahead"):
        call_command("preview_expiry", "--date", f"{last + timedelta(days=1):%Y-%m-%d}")


@pytest.mark.parametrize(
    "command, option, value, said",
    [
        ("preview_degradation", "--date", "0001-01-01", "before the programme began"),
        ("preview_degradation", "--date", "9999-12-31", "more than ten years ahead"),
        ("preview_degradation", "--date", "31/03/2026", "not a date like 2026-03-31"),
        ("preview_degradation", "--limit", "-1", "not a whole number"),
        ("preview_expiry", "--date", "9999-12-31", "more than ten years ahead"),
        ("preview_expiry", "--limit", "-1", "not a whole number"),
        ("preview_expiry", "--limit", "99999999999999999999", "more than 10,000,000"),
        ("preview_degradation", "--limit", "\u00b2", "not a whole number"),
    ],
)
def test_a_preview_refuses_an_option_it_cannot_use_in_words(tiers, command, option, value, said):
    with pytest.raises(CommandError, match=f"argument {option}: .*{said}"):
        call_command(command, option, value, stdout=io.StringIO())


def test_D2_a_threshold_moved_and_moved_back_leaves_a_degraded_member_degraded(
    make_member, buy, degradation
):
    # given: Silver by 1,200 points, 100 days without a purchase: degraded to Bronze
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "1200", when=now - timedelta(days=100))
    assert degrade_inactive_members(now=now) == 1
    told = Notification.objects.filter(member=member, kind="degradation").count()

    # when: a marketer raises Silver above the member, then puts it back
    Tier.objects.filter(code="silver").update(threshold=1500)
    recalculate_all_tiers()
    Tier.objects.filter(code="silver").update(threshold=1000)
    recalculate_all_tiers()

    # then: qualified for Silver again, still at Bronze, as the inactivity says; the
    # nightly job has nothing to do and the member is not told "We miss you" twice
    assert tiers_of(member) == ("silver", "bronze")
    assert degrade_inactive_members(now=now) == 0
    assert Notification.objects.filter(member=member, kind="degradation").count() == told


def test_D2_a_lower_threshold_reached_by_an_inactive_member_gives_the_tier_their_inactivity_leaves(
    make_member, buy, degradation
):
    # given: 800 points, Bronze, 100 days without a purchase (nothing to degrade)
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "800", when=now - timedelta(days=100))

    # when: Silver comes down to 700
    Tier.objects.filter(code="silver").update(threshold=700)
    recalculate_all_tiers()

    # then: qualified for Silver, one period of inactivity below it: Bronze, not a
    # day at Silver followed by a degradation
    assert tiers_of(member) == ("silver", "bronze")
    assert degrade_inactive_members(now=now) == 0
    assert not Notification.objects.filter(member=member, kind="degradation").exists()


def test_T3_D2_the_threshold_preview_says_who_keeps_their_tier_by_inactivity(
    client, login, make_member, buy, degradation
):
    """Found by an audit: lowering Gold "would move 24 members up" while some of them,
    inactive, stayed at their tier; the preview never said so."""
    # given: 800 points each, Bronze; one 100 days without a purchase, one active
    now = timezone.now()
    for days in (100, 10):
        buy(
            make_member(joined_at=now - timedelta(days=400)), "800", when=now - timedelta(days=days)
        )
    login("Marketer")
    silver = Tier.objects.get(code="silver")

    # when: Silver would come down to 700
    form = {"name": "Silver", "code": "silver", "threshold": "700", "multiplier": "1.5"}
    page = client.post(
        reverse("admin:tiers_tier_change", args=[silver.pk]),
        form | {"upgrade_bonus_points": "100", "benefits": ""},
    )

    # then: both move up; the inactive one keeps Bronze, and the marketer reads it
    assert page.context["moves"] == {"up": 2, "down": 0, "kept": 1}
    text = " ".join(page.content.decode().split())
    assert '<strong id="moves-kept">1</strong> of them keep the tier they hold now' in text


@pytest.mark.parametrize("write", ["return", "adjustment"])
def test_D2_a_write_before_the_recalculation_gives_the_new_tier_lowered_by_inactivity(
    make_member, buy, degradation, staff, write
):
    # given: 800 points, Bronze, 100 days without a purchase (nothing to degrade);
    # Silver brought down to 700, the recalculation not run yet
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    bought = buy(member, "800", when=now - timedelta(days=100))
    silver = Tier.objects.get(code="silver")
    silver.threshold = 700
    silver.save()

    # when the member's next ledger write reaches them first: a small return, or points
    # given by an agent (neither restores a tier, D3)
    if write == "return":
        give_return(member, bought, "10", when=now)
    else:
        adjust_points(member=Member.objects.get(pk=member.pk), points=5, reason="Sorry", by=staff)

    # then: qualified for Silver, one period of inactivity below it: Bronze, as the
    # recalculation gives; the nightly job has nothing to do, and no "We miss you"
    assert tiers_of(member) == ("silver", "bronze")
    assert degrade_inactive_members(now=now) == 0
    assert recalculate_all_tiers() == 0
    assert not Notification.objects.filter(member=member, kind="degradation").exists()


def test_D3_a_purchase_before_the_recalculation_earns_at_the_new_tier_restored(
    make_member, buy, degradation
):
    # given: as above, Silver brought down to 700 for an inactive Bronze member at 800
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "800", when=now - timedelta(days=100))
    silver = Tier.objects.get(code="silver")
    silver.threshold = 700
    silver.save()

    # when the member buys before the recalculation reached them
    purchase = buy(member, "100", when=now)

    # then: the purchase restores the new tier (D3) and earns at Silver's x1.5
    assert tiers_of(member) == ("silver", "silver")
    assert earned(purchase) == 150


def test_D2_a_run_s_chunks_keep_the_policy_it_started_with(make_member, buy, degradation):
    """From a review: degradation switched off while a run's chunks were queued left
    some of that night's members degraded and the others not."""
    from core.jobs import id_chunks, start_run
    from tiers.tasks import degrade_chunk_task, policy_of_the_run

    # given: Silver, 100 days without a purchase; the run starts under the policy on
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "1200", when=now - timedelta(days=100))
    policy = policy_of_the_run()
    run, chunks = start_run("degradation", now.isoformat(), id_chunks(Member))

    # when: a marketer switches degradation off before the run's chunk is taken
    DegradationPolicy.objects.filter(pk=1).update(enabled=False)
    for chunk in chunks:
        degrade_chunk_task(run.pk, now.isoformat(), *chunk, policy)

    # then: the run is done as it started, the member dropped with the others of that night
    member.refresh_from_db()
    assert member.effective_tier.code == "bronze"
    # and a run started after the change degrades nobody
    assert degrade_inactive_members(now=now + timedelta(days=200)) == 0
