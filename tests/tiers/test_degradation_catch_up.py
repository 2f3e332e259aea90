"""D2 and E2 after downtime (found by an audit): nights whose degradation run did not
happen are run first, each as of the start of its day, so that a drop is recorded on the
day its run was due, and an expiry at a cutoff in between takes what the preview and the
reminders said it would. Before, the late run recorded every drop at its own time: a
member who should have been Silver at the cutoff was Gold in the history, and kept the
points members had been told would expire."""

from datetime import date, datetime
from unittest import mock

import pytest
from django.utils import timezone

from core.jobs import id_chunks, start_run
from core.models import JobRun
from members.models import Member, Notification, TierChange
from points.expiry_selectors import points_at_stake
from points.models import ExpiryPolicy, LedgerEntry
from points.services import expire_points, merge_members
from points.tasks import expire_points_task
from tests.conftest import at, local_time, summary
from tiers.models import Tier
from tiers.services import grant_status
from tiers.tasks import degrade_inactive_members_task

pytestmark = pytest.mark.django_db


def moment(*parts) -> datetime:
    return local_time(datetime(*parts))


@pytest.fixture
def gold_until_30_december(make_member, buy, degradation):
    """Gold by a purchase at 23:30 on 1 Oct 2026: 90 days without a purchase end at
    23:30 on 30 Dec, and the run of 31 Dec drops her to Silver, whose points expire at
    the 31 Dec cutoff (monthly expiry from 1 Dec). The last degradation run: 28 Dec."""
    member = make_member(joined_at=at("2026-06-01"))
    buy(member, "3000", when=moment(2026, 10, 1, 23, 30))
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": date(2026, 12, 1)}
    )
    JobRun.objects.create(
        job="degradation",
        key=moment(2026, 12, 28, 3, 15).isoformat(),
        started_at=moment(2026, 12, 28, 3, 15),
        finished_at=moment(2026, 12, 28, 3, 16),
    )
    member.refresh_from_db()
    assert member.effective_tier.code == "gold"
    return member


def test_D2_E2_nights_missed_are_run_first_and_the_expiry_takes_what_was_forecast(
    gold_until_30_december,
):
    # given: what the preview and the reminders say the 31 Dec cutoff takes from her
    member = gold_until_30_december
    stake = points_at_stake(date(2026, 12, 31), now=moment(2026, 12, 20, 12, 0))
    told = dict(stake.values_list("member", "at_stake"))
    assert told[member.pk] > 3000

    # when: no run on 29, 30 and 31 Dec (the workers were down); the first run after is
    # at 00:01 on 1 Jan, then the expiry at 00:05
    degrade_inactive_members_task(now=moment(2027, 1, 1, 0, 1).isoformat())
    expire_points(now=moment(2027, 1, 1, 0, 5))

    # then: Silver from the start of 31 Dec, as the run of that day would have made her,
    # and the expiry took what she was told
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert (drop.from_tier.code, drop.to_tier.code) == ("gold", "silver")
    assert drop.changed_at == moment(2026, 12, 31, 0, 0)
    expired = LedgerEntry.objects.get(member=member, kind="expiry")
    assert expired.points == -told[member.pk]
    assert summary(member, now=moment(2027, 1, 1, 0, 6))["available"] == 0
    nights = JobRun.objects.filter(job="degradation").order_by("started_at")
    assert [run.finished_at is not None for run in nights] == [True] * 5


def test_D2_E2_after_downtime_the_expiry_job_first_runs_the_nights_missed(
    gold_until_30_december,
):
    # given: what the 31 Dec cutoff takes from her, as she was told
    member = gold_until_30_december
    stake = points_at_stake(date(2026, 12, 31), now=moment(2026, 12, 20, 12, 0))
    told = dict(stake.values_list("member", "at_stake"))

    # when: no run on 29, 30 and 31 Dec; beat's first job after is the expiry at 00:05
    # on 1 Jan, before the degradation's at 03:15
    with mock.patch("django.utils.timezone.now", return_value=moment(2027, 1, 1, 0, 5)):
        expire_points_task()

    # then: Silver from the start of 31 Dec, and the expiry took what she was told
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert drop.changed_at == moment(2026, 12, 31, 0, 0)
    expired = LedgerEntry.objects.get(member=member, kind="expiry")
    assert expired.points == -told[member.pk]


def test_D2_a_run_left_unfinished_before_the_downtime_is_finished_before_the_nights_missed(
    gold_until_30_december,
):
    # given: the run of 31 Dec, whose workers died before any chunk ran; no run on 1 or
    # 2 Jan
    member = gold_until_30_december
    due = moment(2026, 12, 31, 0, 0)
    run, _ = start_run("degradation", due.isoformat(), id_chunks(Member))
    JobRun.objects.filter(pk=run.pk).update(started_at=due)

    # when: the next run, on 3 Jan
    degrade_inactive_members_task(now=moment(2027, 1, 3, 3, 15).isoformat())

    # then: dropped by the run of 31 Dec, as due, not by the catch-up of 1 Jan
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert drop.changed_at == due
    assert not JobRun.objects.filter(job="degradation", finished_at=None).exists()


def test_D2_a_catch_up_cut_short_leaves_the_nights_after_it_to_the_next_run(
    gold_until_30_december,
):
    """From a review: a catch-up cut short (a worker killed, the database away) after its
    first night left the nights after it as if run: their rows are created on the day of
    the catch-up, and the last run was read from when a row was created."""
    # given: on 1 Jan, a catch-up ran the night of 29 Dec, then stopped
    member = gold_until_30_december
    night = timezone.localtime(moment(2026, 12, 29, 0, 0))  # keyed as a catch-up keys it
    run, _ = start_run("degradation", night.isoformat(), id_chunks(Member))
    JobRun.objects.filter(pk=run.pk).update(
        started_at=moment(2027, 1, 1, 0, 1), finished_at=moment(2027, 1, 1, 0, 2)
    )

    # when: the job runs again (Celery's retry, or the next worker)
    degrade_inactive_members_task(now=moment(2027, 1, 1, 0, 3).isoformat())

    # then: the nights of 30 and 31 Dec ran too, and she dropped on the night it was due
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert drop.changed_at == moment(2026, 12, 31, 0, 0)
    keys = JobRun.objects.filter(job="degradation").values_list("key", flat=True)
    nights = {timezone.localtime(moment(2026, 12, day, 0, 0)) for day in (30, 31)}
    assert {night.isoformat() for night in nights} <= set(keys)


def test_D2_a_run_the_night_after_the_last_one_catches_nothing_up(gold_until_30_december):
    degrade_inactive_members_task(now=moment(2026, 12, 29, 3, 15).isoformat())

    assert JobRun.objects.filter(job="degradation").count() == 2
    assert not TierChange.objects.filter(reason="degradation").exists()


def told_of_31_december(member) -> int:
    """The points the 31 Dec cutoff takes from the member, as the preview and the
    reminders told her on 20 Dec."""
    stake = points_at_stake(date(2026, 12, 31), now=moment(2026, 12, 20, 12, 0))
    return dict(stake.values_list("member", "at_stake"))[member.pk]


def bought_at_2_past_midnight(member, buy) -> None:
    """A till records her purchase at 00:02 on 1 Jan, before beat's first job."""
    till = moment(2027, 1, 1, 0, 2)
    with mock.patch("django.utils.timezone.now", return_value=till):
        buy(member, "10", when=till)


def expire_at_5_past_midnight() -> None:
    with mock.patch("django.utils.timezone.now", return_value=moment(2027, 1, 1, 0, 5)):
        expire_points_task()


def test_D2_E2_a_purchase_before_the_nights_missed_are_run_does_not_save_the_points(
    gold_until_30_december, buy
):
    """Found by an audit of the jobs beside live writes: the catch-up counted from the
    purchase, so it dropped no one, the history had her Gold at the cutoff, and the
    expiry took nothing of what she had been told."""
    # given: what the preview and the reminders say the 31 Dec cutoff takes from her
    member = gold_until_30_december
    told = told_of_31_december(member)

    # when: no run on 29, 30 and 31 Dec; a till records her purchase at 00:02 on 1 Jan,
    # before beat's first job after the downtime, the expiry at 00:05
    bought_at_2_past_midnight(member, buy)
    expire_at_5_past_midnight()

    # then: Silver from the start of 31 Dec, as the run of that day would have made her,
    # Gold again by the purchase, and the expiry took what she was told; she hears of
    # neither (her "We miss you" would have been undone before it went)
    history = TierChange.objects.filter(member=member, changed_at__gt=moment(2026, 12, 1, 0, 0))
    assert [
        (change.reason, change.to_tier.code, change.changed_at)
        for change in history.order_by("changed_at")
    ] == [
        ("degradation", "silver", moment(2026, 12, 31, 0, 0)),
        ("restoration", "gold", moment(2027, 1, 1, 0, 2)),
    ]
    expired = LedgerEntry.objects.get(member=member, kind="expiry")
    assert expired.points == -told
    member.refresh_from_db()
    assert member.effective_tier.code == "gold"
    assert not Notification.objects.filter(member=member, kind__in=["degradation", "restoration"])


def test_D2_a_purchase_after_nights_that_were_run_records_no_drop_of_its_own(
    gold_until_30_december, buy
):
    # given: the run of 31 Dec happened and left her Gold (degradation was off then)
    member = gold_until_30_december
    JobRun.objects.create(
        job="degradation",
        key=moment(2026, 12, 31, 3, 15).isoformat(),
        started_at=moment(2026, 12, 31, 3, 15),
        finished_at=moment(2026, 12, 31, 3, 16),
    )

    # when: she buys at 00:02 on 1 Jan, overdue by the policy as it is now
    bought_at_2_past_midnight(member, buy)

    # then: no drop on a night whose run happened, and still Gold
    assert not TierChange.objects.filter(member=member, changed_at__gt=moment(2026, 12, 1, 0, 0))
    member.refresh_from_db()
    assert member.effective_tier.code == "gold"


def last_run(when) -> None:
    JobRun.objects.create(
        job="degradation", key=when.isoformat(), started_at=when, finished_at=when
    )


def told_of(member) -> list[tuple]:
    messages = Notification.objects.filter(member=member).order_by("pk")
    return [(n.kind, n.tier_change.from_tier.code, n.tier_change.to_tier.code) for n in messages]


def test_D2_E2_a_purchase_before_a_run_left_unfinished_reaches_her_does_not_save_the_points(
    gold_until_30_december, buy
):
    # given: the run of 31 Dec started, but its chunks' messages were lost (a broker
    # that restarted), and what the 31 Dec cutoff takes from her, as she was told
    member = gold_until_30_december
    for day in (29, 30):
        last_run(moment(2026, 12, day, 3, 15))
    told = told_of_31_december(member)
    due = moment(2026, 12, 31, 3, 15)
    run, _ = start_run("degradation", due.isoformat(), id_chunks(Member))
    JobRun.objects.filter(pk=run.pk).update(started_at=due)

    # when: she buys at 00:02 on 1 Jan, then the expiry job finishes the run and expires
    bought_at_2_past_midnight(member, buy)
    expire_at_5_past_midnight()

    # then: Silver from that run, Gold again by the purchase, her points expired
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert (drop.to_tier.code, drop.changed_at) == ("silver", due)
    assert LedgerEntry.objects.get(member=member, kind="expiry").points == -told


@pytest.fixture
def platinum_weekly(make_member, buy, degradation):
    """Platinum by a purchase on 1 Dec, under a policy of 7 days a level; the last run
    on 1 Dec."""
    degradation.inactivity_days = 7
    degradation.save()
    member = make_member(joined_at=at("2026-06-01"))
    buy(member, "8000", when=moment(2026, 12, 1, 12, 0))
    last_run(moment(2026, 12, 1, 3, 15))
    return member


def sent_late_then_nights_run(member, buy, *, on: tuple) -> None:
    """A till that was offline sends, at 00:02 on the day `on`, a purchase made at noon
    on 17 Dec; the nights missed are run at 03:15 that day."""
    now = moment(*on, 0, 2)
    with mock.patch("django.utils.timezone.now", return_value=now):
        buy(member, "10", when=moment(2026, 12, 17, 12, 0), now=now)
    degrade_inactive_members_task(now=moment(*on, 3, 15).isoformat())


def test_D2_D4_a_purchase_a_period_old_recorded_after_nights_missed_leaves_the_drops_told(
    platinum_weekly, buy
):
    """Found by an audit of the change above: drops the purchase did not undo whole
    were made silently, and the member never heard she had left Platinum."""
    # when: on 1 Jan, after nights without a run, a till sends a purchase of 17 Dec
    member = platinum_weekly
    sent_late_then_nights_run(member, buy, on=(2027, 1, 1))

    # then: Silver, as 15 days since that purchase leave her, and told she dropped
    member.refresh_from_db()
    assert member.effective_tier.code == "silver"
    drops = [(before, after) for kind, before, after in told_of(member) if kind == "degradation"]
    assert drops[0][0] == "platinum" and drops[-1][1] == "silver"


def test_D4_a_purchase_a_period_old_after_nights_missed_is_no_welcome_back(platinum_weekly, buy):
    # when: on 26 Dec, after nights without a run, a till sends a purchase of 17 Dec
    member = platinum_weekly
    sent_late_then_nights_run(member, buy, on=(2026, 12, 26))

    # then: Gold, as 9 days since that purchase leave her, and told she left Platinum;
    # nothing says "Welcome back"
    member.refresh_from_db()
    assert member.effective_tier.code == "gold"
    assert told_of(member)[1:] == [("degradation", "platinum", "gold")]


def test_G5_a_match_ended_while_nights_were_missed_ends_before_any_drop(
    make_member, buy, degradation, staff
):
    # given: Silver, matched to Gold until 29 Dec, inactive since June; the last run 29 Dec
    member = make_member(joined_at=at("2026-05-01"))
    buy(member, "1000", when=at("2026-06-01"))
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=member,
        tier=gold,
        until=date(2026, 12, 29),
        reason="Gold card of a competitor",
        by=staff,
        now=at("2026-12-01"),
    )
    last_run(moment(2026, 12, 29, 3, 15))

    # when: she buys at 00:02 on 1 Jan, before the nights missed are run
    bought_at_2_past_midnight(member, buy)
    degrade_inactive_members_task(now=moment(2027, 1, 1, 3, 15).isoformat())

    # then: the match ended first, and each change starts where the one before left her
    history = TierChange.objects.filter(member=member, changed_at__gt=at("2026-12-02"))
    history = list(history.order_by("changed_at", "pk"))
    assert (history[0].reason, history[0].from_tier.code) == ("status_match_ended", "gold")
    for before, after in zip(history, history[1:], strict=False):
        assert after.from_tier_id == before.to_tier_id


def test_D2_T3_a_threshold_saved_while_nights_were_missed_keeps_their_drop_on_its_night(
    gold_until_30_december, buy
):
    """Found by an audit of the change above: the purchase first moved her by the new
    thresholds, already lowered by inactivity, at the purchase's time, and no drop was
    left for the night it was due: Gold at the cutoff, her points kept."""
    # given: Gold's threshold raised above her points while the workers were down (the
    # recalculation not run), and what the 31 Dec cutoff takes from her, as she was told
    member = gold_until_30_december
    told = told_of_31_december(member)
    Tier.objects.filter(code="gold").update(threshold=3500)

    # when: she buys at 00:02 on 1 Jan, then the expiry job runs the nights and expires
    bought_at_2_past_midnight(member, buy)
    expire_at_5_past_midnight()

    # then: Silver from the start of 31 Dec, and her points expired
    drop = TierChange.objects.get(member=member, reason="degradation")
    assert drop.changed_at == moment(2026, 12, 31, 0, 0)
    assert LedgerEntry.objects.get(member=member, kind="expiry").points == -told


@pytest.fixture
def survivor_and_duplicate(gold_until_30_december, make_member, buy):
    """Gold until 29 Dec (90 days from 30 Sep), Silver by the run of 30 Dec; and her
    duplicate account, which bought on 20 Dec. The last run 28 Dec."""
    survivor = make_member("M-KEEP", joined_at=at("2026-06-01"))
    buy(survivor, "3000", when=moment(2026, 9, 30, 23, 30))
    duplicate = make_member("M-OLD", joined_at=at("2026-06-01"))
    with mock.patch("django.utils.timezone.now", return_value=moment(2026, 12, 20, 12, 0)):
        buy(duplicate, "10", when=moment(2026, 12, 20, 12, 0))
    return survivor, duplicate


def merged_at_10_on_31_december(survivor, duplicate, staff) -> None:
    when = moment(2026, 12, 31, 10, 0)
    with mock.patch("django.utils.timezone.now", return_value=when):
        merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="Same", now=when)


def test_D2_M3_a_merge_while_nights_were_missed_keeps_the_survivor_s_drop(
    survivor_and_duplicate, staff
):
    """Found by an audit of the change above: the duplicate's purchase of 20 Dec became
    the survivor's last, the catch-up counted from it and dropped no one: Gold at the
    cutoff, her points kept. (A merge before the run of the day the drop falls due
    comes before it, as on time: the customer did buy on 20 Dec.)"""
    # given: Gold until 29 Dec (90 days from 30 Sep), Silver by the run of 30 Dec; what
    # the 31 Dec cutoff takes from her; a duplicate who bought on 20 Dec
    survivor, duplicate = survivor_and_duplicate
    told = told_of_31_december(survivor)

    # when: an agent merges them at 10:00 on 31 Dec, no run since 28 Dec; then the expiry
    merged_at_10_on_31_december(survivor, duplicate, staff)
    expire_at_5_past_midnight()

    # then: Silver from the start of 30 Dec, told so, and her points (the duplicate's
    # 10 with them) expired at the cutoff
    drop = TierChange.objects.get(member=survivor, reason="degradation")
    assert (drop.to_tier.code, drop.changed_at) == ("silver", moment(2026, 12, 30, 0, 0))
    assert ("degradation", "gold", "silver") in told_of(survivor)
    assert LedgerEntry.objects.get(member=survivor, kind="expiry").points == -(told + 10)


def test_D4_G5_a_merge_carrying_a_match_leaves_the_drop_s_message_on_the_drop(
    survivor_and_duplicate, staff
):
    """Found by an audit of the change above: the message of a night's drop was told
    from the merge's change, as the carried match's messages are: "We miss you ... for
    now you enjoy the benefits of Platinum"."""
    # given: Gold until 29 Dec; a duplicate who bought on 20 Dec, matched to Platinum
    survivor, duplicate = survivor_and_duplicate
    platinum = Tier.objects.get(code="platinum")
    grant_status(
        member=duplicate,
        tier=platinum,
        until=date(2027, 3, 31),
        reason="Competitor",
        by=staff,
        now=moment(2026, 12, 21, 12, 0),
    )

    # when: they merge at 10:00 on 31 Dec, no run since 28 Dec
    merged_at_10_on_31_december(survivor, duplicate, staff)

    # then: the drop's message tells the drop, not the match
    [drop] = Notification.objects.filter(member=survivor, kind="degradation")
    assert (drop.tier_change.reason, drop.tier_change.to_tier.code) == ("degradation", "silver")
