"""Programme analytics: the daily snapshot of members per tier and of the points issued,
redeemed, expired, returned and outstanding (docs/rules.md, "Programme analytics")."""

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from members.models import Member
from points.models import DailyPoints, DailyTier, ExpiryPolicy, PointDefinition
from points.services import adjust_points, expire_points
from points.services.snapshots import REWRITE_DAYS, take_snapshots
from rewards.models import Reward
from rewards.services import cancel_redemption, redeem
from tests.conftest import at, give_return, postgres_only, run_together
from tiers.models import DegradationPolicy
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


def day(iso) -> DailyPoints:
    return DailyPoints.objects.get(day=date.fromisoformat(iso))


def tiers_on(iso) -> dict:
    rows = DailyTier.objects.filter(day=date.fromisoformat(iso), members__gt=0)
    return dict(rows.values_list("tier__code", "members"))


@pytest.fixture
def history(make_member, buy, catalogue, staff):
    """Two members over a fortnight of March 2026: purchases (points available three
    days later), a return, a redemption and its cancellation, a goodwill adjustment."""
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=3)
    ann = make_member("M-ANN", joined_at=at("2026-03-01"))
    bob = make_member("M-BOB", joined_at=at("2026-03-05"))
    first = buy(ann, "1200.00", at("2026-03-02"))  # 1,200 points: Silver, +100 tier-up bonus
    buy(bob, "80.00", at("2026-03-06"))
    give_return(ann, first, "300.00", at("2026-03-08"))  # -300: 900 lifetime, Bronze
    return ann, bob


# The day's points


def test_each_day_counts_points_issued_and_returned_on_it(history):
    # when the job runs on 15 March
    take_snapshots(now=at("2026-03-15", 1))

    # then each day has what the ledger issued on it, by kind
    assert (day("2026-03-02").issued, day("2026-03-02").returned) == (1_300, 0)
    assert day("2026-03-06").issued == 80
    assert (day("2026-03-08").issued, day("2026-03-08").returned) == (0, 300)
    assert day("2026-03-14").issued == 0


def test_points_are_pending_until_their_accrual_day_then_available(history):
    take_snapshots(now=at("2026-03-15", 1))

    # the purchase of 2 March (1,200) waits three days; the tier-up bonus (100) does not
    assert (day("2026-03-02").available, day("2026-03-02").pending) == (100, 1_200)
    assert (day("2026-03-05").available, day("2026-03-05").pending) == (1_300, 0)
    # the return of 8 March takes 300 off what is available
    assert (day("2026-03-14").available, day("2026-03-14").pending) == (1_080, 0)


def test_outstanding_points_of_the_last_day_equal_the_members_balances(history, staff):
    # given, today, a redemption, a cancelled one and an adjustment
    ann, bob = history
    cheapest = Reward.objects.order_by("points_cost").first()
    redeem(member=ann, reward=cheapest)
    cancel_redemption(redemption=redeem(member=ann, reward=cheapest))
    adjust_points(member=bob, points=25, reason="Late delivery", by=staff)

    # when the job runs tomorrow
    today = timezone.localdate()
    take_snapshots(now=timezone.now() + timedelta(days=1))

    # then today's row has them, and what is outstanding is what members hold
    row = DailyPoints.objects.get(day=today)
    assert row.redeemed == cheapest.points_cost
    assert row.issued == 25
    held = Member.objects.aggregate(total=Sum("points_balance"))["total"]
    assert row.available + row.pending == held


def test_expired_points_are_counted_on_the_cutoff_day(make_member, buy):
    # given quarterly expiry from 2026 and a Bronze member with 50 points
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "quarterly", "starts_on": date(2026, 1, 1)}
    )
    member = make_member(joined_at=at("2026-03-01"))
    buy(member, "50.00", at("2026-03-02"))
    expire_points(now=at("2026-04-02"))

    take_snapshots(now=at("2026-04-03", 1))

    assert day("2026-03-31").expired == 50
    assert day("2026-03-31").available == 0


def test_points_expired_by_a_run_more_than_a_week_late_count_on_the_cutoff_day(make_member, buy):
    # given monthly expiry, 50 points at the 31 March cutoff, and the nightly figures
    # taken every day to 9 April while the expiry job was down
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": date(2026, 3, 1)}
    )
    buy(make_member(joined_at=at("2026-03-01")), "50.00", at("2026-03-02"))
    for n in range(1, 11):
        take_snapshots(now=at(f"2026-04-{n:02}", 1))

    # when the expiry job catches up on 10 April, and the figures are taken that night
    expire_points(now=at("2026-04-10"))
    take_snapshots(now=at("2026-04-11", 1))

    # then the 50 expired on 31 March, and no day holds them after
    assert day("2026-03-31").expired == 50
    assert day("2026-03-31").available == day("2026-04-05").available == 0


def test_drops_a_degradation_catch_up_dates_weeks_back_count_on_their_days(make_member, buy, tiers):
    """From a review: the figures were taken again for the last week only, while the
    catch-up dates its drops as far back as a month."""
    from core.models import JobRun
    from tiers.tasks import degrade_inactive_members_task

    # given: Silver by a purchase on 1 January; 90 days without one end on 1 April. The
    # last degradation run was on 25 March; the figures were taken every night since
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    buy(make_member(joined_at=at("2025-12-01")), "1000.00", at("2026-01-01"))
    JobRun.objects.create(
        job="degradation",
        key=at("2026-03-25", 3).isoformat(),
        started_at=at("2026-03-25", 3),
        finished_at=at("2026-03-25", 3),
    )
    for n in range(1, 21):
        take_snapshots(now=at(f"2026-04-{n:02}", 1))

    # when the degradation job comes back on 20 April, and the figures are taken that night
    degrade_inactive_members_task(now=at("2026-04-20", 3).isoformat())
    take_snapshots(now=at("2026-04-21", 1))

    # then she is Bronze from the night of 2 April, in the figures of every day since
    assert tiers_on("2026-04-01") == {"silver": 1}
    assert tiers_on("2026-04-02") == tiers_on("2026-04-10") == {"bronze": 1}


def test_a_degradation_run_finished_after_a_snapshot_began_is_taken_by_the_next(
    make_member, buy, tiers
):
    """Found by a review: a catch-up started before a snapshot and finished after it was
    taken by neither that snapshot nor any later one (its start was before the
    snapshot's time), so its night's drops never reached the figures."""
    from core.jobs import start_run
    from core.models import JobRun
    from tiers.tasks import degrade_chunk_task

    # given: Silver by a purchase on 1 January; figures taken every night to 20 April
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "1000.00", at("2026-01-01"))
    for n in range(1, 21):
        take_snapshots(now=at(f"2026-04-{n:02}", 1))
    # when: a catch-up of the night of 2 April starts, a snapshot reads, then its chunk
    night = at("2026-04-02").isoformat()
    run, chunks = start_run("degradation", night, [(member.pk, member.pk)])
    take_snapshots(now=at("2026-04-21", 1))
    degrade_chunk_task(run.pk, night, *chunks[0])
    assert JobRun.objects.get(pk=run.pk).finished_at is not None
    take_snapshots(now=at("2026-04-22", 1))

    # then: the next snapshot counts her Bronze from 2 April; one after it, the same
    assert tiers_on("2026-04-01") == {"silver": 1}
    assert tiers_on("2026-04-02") == tiers_on("2026-04-12") == {"bronze": 1}
    take_snapshots(now=at("2026-04-23", 1))
    assert tiers_on("2026-04-12") == {"bronze": 1}


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_expiry_committed_while_a_snapshot_reads_is_taken_by_the_next(make_member, buy):
    """Found by a review: the cutoff's run was dated before the snapshot's read and
    committed after it, so no snapshot took its cutoff day again: a month of figures
    kept the expired points as available."""
    import threading

    from django.db import connections, transaction

    from core.jobs import id_chunks
    from points.services.expiry import expire_chunk, finish_cutoff

    # given: 50 points at the 31 March cutoff; figures taken every night to 10 April
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": date(2026, 3, 1)}
    )
    buy(make_member(joined_at=at("2026-03-01")), "50.00", at("2026-03-02"))
    for n in range(1, 11):
        take_snapshots(now=at(f"2026-04-{n:02}", 1))
    written, go = threading.Event(), threading.Event()

    def expire_late():  # the late run's last chunk: written, not yet committed
        try:
            with transaction.atomic():
                for first_id, last_id in id_chunks(Member):
                    expire_chunk(cutoff=date(2026, 3, 31), first_id=first_id, last_id=last_id)
                finish_cutoff(date(2026, 3, 31))
                written.set()
                go.wait(30)
        finally:
            connections.close_all()

    worker = threading.Thread(target=expire_late)
    worker.start()
    assert written.wait(30)

    # when: a snapshot reads before the run commits, and the next one after
    take_snapshots(now=at("2026-04-11", 1))
    go.set()
    worker.join(30)
    take_snapshots(now=at("2026-04-12", 1))

    # then: the 50 expired on 31 March, and no day holds them after
    assert day("2026-03-31").expired == 50
    assert day("2026-03-31").available == day("2026-04-05").available == 0


# Members per tier


def test_members_are_counted_by_effective_tier_at_the_end_of_each_day(history):
    take_snapshots(now=at("2026-03-15", 1))

    assert tiers_on("2026-03-01") == {"bronze": 1}  # Bob joins on 5 March
    assert tiers_on("2026-03-02") == {"silver": 1}
    assert tiers_on("2026-03-06") == {"silver": 1, "bronze": 1}
    assert tiers_on("2026-03-08") == {"bronze": 2}  # the return takes Ann back to Bronze


def test_a_merged_account_counts_until_the_day_it_is_merged(history, staff):
    from members.services import merge_members

    ann, bob = history
    merge_members(
        survivor=ann, duplicate=bob, by=staff, reason="Same customer", now=at("2026-03-10")
    )

    take_snapshots(now=at("2026-03-15", 1))

    assert tiers_on("2026-03-09") == {"bronze": 2}
    assert tiers_on("2026-03-10") == {"bronze": 1}
    assert day("2026-03-10").issued == 0  # points moved, none issued


def test_a_degraded_member_counts_in_the_tier_it_was_dropped_to(make_member, buy):
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1500.00", at("2026-01-02"))  # Silver
    degrade_inactive_members(now=at("2026-04-10"))  # 90 days without a purchase

    take_snapshots(now=at("2026-04-12", 1))

    assert tiers_on("2026-04-09") == {"silver": 1}
    assert tiers_on("2026-04-10") == {"bronze": 1}


def test_a_back_dated_tier_change_counts_from_the_change_recorded_before_it(make_member, buy):
    # given Ann becomes Silver on 10 March; then an older purchase of 2 March, recorded
    # later, makes her Gold: her history reads Bronze, Silver (10 March), Gold (2 March)
    ann = make_member("M-ANN", joined_at=at("2026-03-01"))
    make_member("M-BOB", joined_at=at("2026-03-01"))
    buy(ann, "1500.00", at("2026-03-10"))
    buy(ann, "2000.00", at("2026-03-02"))

    # when
    take_snapshots(now=at("2026-03-15", 1))

    # then Ann is counted once every day, Gold from the day she became Silver, and no
    # tier is ever counted below zero
    assert tiers_on("2026-03-05") == {"bronze": 2}
    assert tiers_on("2026-03-10") == {"gold": 1, "bronze": 1}
    assert tiers_on("2026-03-14") == {"gold": 1, "bronze": 1}
    assert not DailyTier.objects.filter(members__lt=0).exists()
    assert all(sum(tiers_on(f"2026-03-{n:02}").values()) == 2 for n in range(1, 15))


# Runs: catch-up, twice, at once


def test_missed_days_are_caught_up_and_a_second_run_changes_nothing(history):
    # when the job did not run for ten days, then runs twice
    take_snapshots(now=at("2026-03-04", 1))
    first = take_snapshots(now=at("2026-03-15", 1))
    rows = list(DailyPoints.objects.order_by("day").values_list("day", "issued", "available"))
    again = take_snapshots(now=at("2026-03-15", 1))

    # then every day since the first member joined is there once, as before
    assert first == 11  # 4 to 14 March
    assert again == 7
    assert [row[0] for row in rows] == [date(2026, 3, n) for n in range(1, 15)]
    after = list(DailyPoints.objects.order_by("day").values_list("day", "issued", "available"))
    assert after == rows
    assert DailyTier.objects.filter(day=date(2026, 3, 14)).count() == 4  # one row per tier


def test_a_late_file_dated_last_week_counts_on_its_own_day(history, make_member, buy):
    take_snapshots(now=at("2026-03-15", 1))
    before = day("2026-03-12").issued

    # given purchases dated 12 March, recorded on the 15th
    buy(history[1], "40.00", at("2026-03-12"))
    take_snapshots(now=at("2026-03-16", 1))

    assert day("2026-03-12").issued == before + 40


def test_nothing_to_take_before_anyone_joins(tiers):
    assert take_snapshots(now=at("2026-03-15", 1)) == 0
    assert not DailyPoints.objects.exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_runs_at_once_write_each_day_once(history):
    results = run_together(2, lambda i: take_snapshots(now=at("2026-03-15", 1)))

    # Both write the 14 days when they start together; one that starts once the other
    # has committed writes only the last REWRITE_DAYS again. Either way, once each.
    assert sorted(results) in ([14, 14], [REWRITE_DAYS, 14])
    assert DailyPoints.objects.count() == 14
    assert DailyTier.objects.count() == 14 * 4


def test_the_beat_row_runs_the_daily_job(history):
    from django_celery_beat.models import PeriodicTask

    from points.tasks import take_snapshots_task

    # given the beat row the migration made
    task = PeriodicTask.objects.get(task="points.tasks.take_snapshots_task")
    assert task.enabled and (task.crontab.hour, task.crontab.minute) == ("0", "15")

    # when its task runs (today), then every day since Ann joined is taken, as far back
    # as ANALYTICS_HISTORY_DAYS reach
    take_snapshots_task.delay()
    yesterday = timezone.localdate() - timedelta(days=1)
    reach = yesterday - timedelta(days=settings.ANALYTICS_HISTORY_DAYS - 1)
    assert DailyPoints.objects.order_by("day").first().day == max(date(2026, 3, 1), reach)
    assert DailyPoints.objects.latest("day").day == yesterday


# Campaigns


@pytest.fixture
def two_campaigns(make_member, buy):
    """A birthday campaign x2 all March and a x2 weekend on 7-8 March; Ann (born in
    March) buys under both, Bob under the weekend only, then Ann's purchase is returned
    in part (results count what the campaigns added when the points were earned)."""
    from datetime import date as day_

    from points.models import Campaign

    birthday = Campaign.objects.create(
        name="Birthday", multiplier=2, starts_at=at("2026-03-01", 0), ends_at=at("2026-04-01", 0)
    )
    birthday.birthday_month_only = True
    birthday.save()
    weekend = Campaign.objects.create(
        name="Weekend", multiplier=2, starts_at=at("2026-03-07", 0), ends_at=at("2026-03-09", 0)
    )
    ann = make_member("M-ANN", joined_at=at("2026-03-01"))
    Member.objects.filter(pk=ann.pk).update(birth_date=day_(1990, 3, 3))
    ann.refresh_from_db()
    bob = make_member("M-BOB", joined_at=at("2026-03-01"))
    buy(ann, "10", at("2026-03-03"))  # 20: birthday +10
    bought = buy(ann, "10", at("2026-03-07"))  # 40: birthday +20, weekend +20
    buy(bob, "10", at("2026-03-08"))  # 20: weekend +10
    buy(bob, "10", at("2026-03-10"))  # 10: no campaign
    give_return(ann, bought, "10.00", at("2026-03-09"))
    return birthday, weekend


def test_each_campaigns_extra_points_and_members_reached(two_campaigns):
    from points.models import CampaignResult

    birthday, weekend = two_campaigns
    # when the job runs on 15 March
    take_snapshots(now=at("2026-03-15", 1))
    # then each campaign has what its multiplier added, and whom and how often it reached
    results = {
        r.campaign_id: (r.extra_points, r.members, r.purchases)
        for r in CampaignResult.objects.all()
    }
    assert results == {birthday.pk: (30, 1, 2), weekend.pk: (30, 2, 2)}


def test_campaign_results_count_to_the_end_of_the_last_day_taken(two_campaigns):
    from points.models import CampaignResult

    birthday, weekend = two_campaigns
    take_snapshots(now=at("2026-03-05", 1))  # up to 4 March
    assert CampaignResult.objects.get(campaign=birthday).extra_points == 10
    assert not CampaignResult.objects.filter(campaign=weekend).exists()  # not started yet
    # a later run brings them up to date, and running it again changes nothing
    take_snapshots(now=at("2026-03-15", 1))
    take_snapshots(now=at("2026-03-15", 2))
    assert CampaignResult.objects.get(campaign=birthday).extra_points == 30
    assert CampaignResult.objects.get(campaign=weekend).members == 2


def test_a_campaign_moved_to_later_dates_keeps_the_points_it_earned_before(two_campaigns):
    """The weekend earned on 7-8 March; before and after the job saw it, it is moved to
    a later weekend: its result still counts those points (the ledger holds them)."""
    from points.models import CampaignResult

    birthday, weekend = two_campaigns
    # given: moved to 14-15 March before any job ran (a result to make: no first point known)
    weekend.starts_at, weekend.ends_at = at("2026-03-14", 0), at("2026-03-16", 0)
    weekend.save()
    # when
    take_snapshots(now=at("2026-03-10", 1))
    # then: found by the points it earned in the days taken
    assert CampaignResult.objects.get(campaign=weekend).extra_points == 30
    # and moved again, to May, once the job knew its first point: still counted
    weekend.starts_at, weekend.ends_at = at("2026-05-02", 0), at("2026-05-04", 0)
    weekend.save()
    take_snapshots(now=at("2026-05-20", 1))
    assert CampaignResult.objects.get(campaign=weekend).extra_points == 30
