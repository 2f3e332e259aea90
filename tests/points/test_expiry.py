"""E1-E4: block expiry at the end of natural periods, exemptions, catch-up, reminders."""

import io
import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connections

from api.views.common import summary as api_summary
from members.models import Member, Notification
from members.tasks import send_notifications_task
from points.expiry_selectors import cutoff_dates, cutoff_instant, expiry_preview
from points.models import ExpiryPolicy, ExpiryRun, LedgerEntry, PointDefinition
from points.selectors import programme
from points.services import adjust_points, expire_points, send_expiry_reminders
from points.services import expiry as expiry_service
from rewards.models import Reward
from rewards.services import cancel_redemption, redeem
from tests.conftest import at, give_return, local_time, postgres_only, run_together, summary
from tiers.models import DegradationPolicy, Tier
from tiers.services import degrade_inactive_members, grant_status

pytestmark = pytest.mark.django_db
MADRID = ZoneInfo("Europe/Madrid")


def expiries(member):
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry")
        .order_by("cutoff")
        .values_list("cutoff", "points")
    )


# E1


def test_E1_month_ends_include_february_of_a_leap_year():
    assert cutoff_dates("monthly", date(2028, 1, 15), date(2028, 4, 30)) == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]
    assert date(2027, 2, 28) in cutoff_dates("monthly", date(2027, 1, 1), date(2027, 12, 31))


def test_E1_quarter_ends_and_year_end():
    assert cutoff_dates("quarterly", date(2026, 1, 1), date(2026, 12, 31)) == [
        date(2026, 3, 31),
        date(2026, 6, 30),
        date(2026, 9, 30),
        date(2026, 12, 31),
    ]
    assert cutoff_dates("annual", date(2026, 1, 1), date(2027, 12, 31)) == [
        date(2026, 12, 31),
        date(2027, 12, 31),
    ]
    assert cutoff_dates("never", date(2026, 1, 1), date(2027, 12, 31)) == []


def test_E1_switching_a_cycle_on_starts_today(db):
    policy = ExpiryPolicy.current()
    assert policy.cycle == "never"
    policy.cycle = "quarterly"
    policy.full_clean()
    assert policy.starts_on is not None


def test_E1_cutoffs_before_starts_on_do_not_count(member, buy, monthly):
    monthly.starts_on = date(2026, 3, 15)
    monthly.save()
    buy(member, "100", when=at("2026-01-10"))
    assert expire_points(now=at("2026-03-20")) == 0
    assert expire_points(now=at("2026-04-01", 1)) == 1
    assert expiries(member) == [(date(2026, 3, 31), -100)]


def test_E1_the_cutoff_is_the_end_of_the_day_across_a_clock_change(member, buy, monthly):
    # In Madrid the clocks went forward on 31 March 2024: that day ended at 22:00 UTC.
    monthly.starts_on = date(2024, 3, 1)
    monthly.save()
    assert cutoff_instant(date(2024, 3, 31)) == datetime(2024, 3, 31, 22, tzinfo=ZoneInfo("UTC"))
    buy(member, "100", when=datetime(2024, 3, 31, 23, 30, tzinfo=MADRID))  # before midnight
    buy(member, "40", when=datetime(2024, 4, 1, 0, 30, tzinfo=MADRID))  # after it
    expire_points(now=local_time("2024-04-01 00:45"))
    assert expiries(member) == [(date(2024, 3, 31), -100)]
    assert summary(member, now=at("2024-04-02"))["available"] == 40


# E2


def test_E2_exempt_gold_keeps_everything_while_silver_loses_available_points(
    make_member, buy, monthly
):
    gold, silver = make_member(), make_member()
    buy(gold, "3000", when=at("2026-01-10"))
    buy(silver, "1000", when=at("2026-01-10"))
    expire_points(now=at("2026-02-01", 1))
    assert expiries(gold) == []
    assert expiries(silver) == [(date(2026, 1, 31), -1100)]  # bonus included
    assert summary(silver)["available"] == 0
    assert summary(gold)["available"] == 3250


def test_E2_a_degraded_member_loses_them(make_member, buy, monthly):
    member = make_member(joined_at=at("2025-09-01"))
    buy(member, "3000", when=at("2025-10-01"))
    DegradationPolicy.objects.filter(pk=DegradationPolicy.current().pk).update(enabled=True)
    degrade_inactive_members(now=at("2026-01-15"))
    assert summary(member)["effective_tier"].code == "silver"
    expire_points(now=at("2026-02-01", 1))
    assert expiries(member) == [(date(2026, 1, 31), -3250)]


def test_E2_pending_points_survive_and_become_available_after(member, buy, monthly):
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=14)
    buy(member, "100", when=at("2026-01-05"))  # available on 19 January
    buy(member, "50", when=at("2026-01-25"))  # available on 8 February
    expire_points(now=at("2026-02-01", 1))
    assert expiries(member) == [(date(2026, 1, 31), -100)]
    assert summary(member, now=at("2026-02-02"))["pending"] == 50
    assert summary(member, now=at("2026-02-09"))["available"] == 50


def test_E2_lifetime_points_and_tier_never_change(member, buy, monthly):
    buy(member, "1200", when=at("2026-01-10"))
    before = summary(member)
    expire_points(now=at("2026-02-01", 1))
    after = summary(member)
    assert after["available"] == 0
    assert (after["lifetime"], after["qualified_tier"]) == (
        before["lifetime"],
        before["qualified_tier"],
    )


def test_E2_zero_and_negative_balances_are_untouched(make_member, buy, staff, monthly):
    zero, negative = make_member(), make_member()
    purchase = buy(negative, "100", when=at("2026-01-05"))
    adjust_points(member=negative, points=-100, reason="spent", by=staff, now=at("2026-01-06"))
    give_return(negative, purchase, "50", when=at("2026-01-07"))
    expire_points(now=at("2026-02-01", 1))
    assert expiries(zero) == [] and expiries(negative) == []


def test_E2_spending_after_the_cutoff_comes_out_of_the_expiring_points(member, buy, staff, monthly):
    buy(member, "100", when=at("2026-01-10"))
    adjust_points(member=member, points=-30, reason="spent", by=staff, now=at("2026-02-01", 0))
    buy(member, "20", when=at("2026-02-01", 0))
    expire_points(now=at("2026-02-01", 6))  # the job ran late
    assert expiries(member) == [(date(2026, 1, 31), -70)]
    assert summary(member)["available"] == 20


@pytest.mark.parametrize("run_at", [0, 6], ids=["on-time", "late"])
def test_E2_a_return_after_the_cutoff_is_not_spending_so_a_late_run_expires_as_on_time(
    member, buy, monthly, run_at
):
    # given 100 at the 31 Jan cutoff, then a purchase of 200 just after it, returned
    buy(member, "100", when=at("2026-01-10"))
    if run_at == 0:
        expire_points(now=at("2026-02-01", 0))
    bought = buy(member, "200", when=at("2026-02-01", 0))
    give_return(member, bought, "200", when=at("2026-02-01", 1))

    # when the job runs, on time (before) or late (after)
    expire_points(now=at("2026-02-01", 6))

    # then the same: the 100 of the cutoff expire
    assert expiries(member) == [(date(2026, 1, 31), -100)]
    assert summary(member)["available"] == 0
    call_command("check_ledger")


@pytest.mark.parametrize("run_at", [None, at("2026-02-03")], ids=["on-time", "late"])
@pytest.mark.parametrize("moved_by", ["purchase", "status match"])
def test_E2_a_tier_reached_after_the_cutoff_does_not_spare_the_points_of_the_cutoff(
    member, buy, monthly, staff, run_at, moved_by
):
    # given Silver (points expire) at the 31 Jan cutoff with 1,100 available
    buy(member, "1000", when=at("2026-01-10"))
    assert summary(member, now=at("2026-01-31"))["available"] == 1100
    if run_at is None:
        expire_points(now=at("2026-02-01", 1))
    # and Gold (exempt) from 2 Feb
    if moved_by == "purchase":
        buy(member, "2000", when=at("2026-02-02"))
    else:
        grant_status(
            member=Member.objects.get(pk=member.pk),
            tier=Tier.objects.get(code="gold"),
            until=date(2026, 6, 30),
            reason="Gold at a competitor",
            by=staff,
            now=at("2026-02-02"),
        )
    assert summary(member)["effective_tier"].code == "gold"

    # when the job runs, on time (before the move) or late (after it)
    expire_points(now=run_at or at("2026-02-01", 1))

    # then the same: the 1,100 Silver had at the cutoff expire
    assert expiries(member) == [(date(2026, 1, 31), -1100)]
    call_command("check_ledger")


@pytest.mark.parametrize("run_at", [None, at("2026-02-03")], ids=["on-time", "late"])
def test_E2_a_tier_lost_after_the_cutoff_does_not_expose_the_points_of_the_cutoff(
    member, buy, monthly, run_at
):
    # given Gold (exempt) at the 31 Jan cutoff
    bought = buy(member, "3000", when=at("2026-01-10"))
    assert summary(member)["effective_tier"].code == "gold"
    if run_at is None:
        expire_points(now=at("2026-02-01", 1))
    # and Silver from 2 Feb, after a return
    give_return(member, bought, "1000", when=at("2026-02-02"))
    assert summary(member)["effective_tier"].code == "silver"

    # when the job runs, on time (before the return) or late (after it)
    expire_points(now=run_at or at("2026-02-01", 1))

    # then the same: nothing expires at a cutoff the member passed in Gold
    assert expiries(member) == []
    call_command("check_ledger")


# E3


def test_E3_two_runs_write_one_entry_per_member(make_member, buy, monthly):
    members = [make_member() for _ in range(3)]
    for m in members:
        buy(m, "100", when=at("2026-01-10"))
    assert expire_points(now=at("2026-02-01", 1)) == 3
    assert expire_points(now=at("2026-02-01", 2)) == 0
    assert LedgerEntry.objects.filter(kind="expiry", cutoff=date(2026, 1, 31)).count() == 3
    call_command("check_ledger")


def test_E3_catch_up_processes_each_missed_cutoff_once_in_order(member, buy, monthly):
    buy(member, "100", when=at("2026-01-10"))
    buy(member, "20", when=at("2026-02-10"))
    buy(member, "3", when=at("2026-03-10"))
    assert expire_points(now=at("2026-04-05")) == 3  # the job was down for three month ends
    assert expiries(member) == [
        (date(2026, 1, 31), -100),
        (date(2026, 2, 28), -20),
        (date(2026, 3, 31), -3),
    ]
    assert list(ExpiryRun.objects.order_by("cutoff").values_list("cutoff", "points")) == [
        (date(2026, 1, 31), 100),
        (date(2026, 2, 28), 20),
        (date(2026, 3, 31), 3),
    ]
    assert expire_points(now=at("2026-04-06")) == 0
    call_command("check_ledger")


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_E3_concurrent_runs_write_one_entry_per_member(make_member, buy, monthly):
    members = [make_member() for _ in range(20)]
    for m in members:
        buy(m, "100", when=at("2026-01-10"))
    results = run_together(2, lambda i: expire_points(now=at("2026-02-01", 1)))
    assert sorted(results) == [0, 20]
    assert LedgerEntry.objects.filter(kind="expiry").count() == 20
    assert all(m.points_balance == 0 for m in Member.objects.filter(pk__in=[m.pk for m in members]))
    call_command("check_ledger")


# E4


def test_E4_reminders_go_once_per_member_and_cutoff(make_member, buy, monthly):
    silver, gold = make_member(), make_member()
    make_member()  # nothing at stake: no reminder
    buy(silver, "20", when=at("2026-03-01"))
    buy(gold, "3000", when=at("2026-03-01"))
    monthly.cycle = "quarterly"
    monthly.save()
    assert send_expiry_reminders(now=at("2026-03-16")) == 0  # 15 days before
    assert send_expiry_reminders(now=at("2026-03-17")) == 1  # 14 days before
    assert send_expiry_reminders(now=at("2026-03-18")) == 0
    reminder = Notification.objects.get(kind="expiry_reminder")
    assert (reminder.member, reminder.points, reminder.cutoff) == (silver, 20, date(2026, 3, 31))
    send_notifications_task.delay()
    assert mail.outbox[-1].subject == "20 points expire on 31 March"
    assert mail.outbox[-1].to == [silver.email]


def test_E4_no_reminder_of_the_next_cutoff_while_a_passed_one_awaits_its_run(
    make_member, buy, monthly
):
    """From a review: after downtime the 09:00 reminders came before the late expiry of
    30 Nov, and told members "88 points expire on 31 December", points the late run then
    took, while the member page and the API named 30 Nov."""
    # given: reminders 30 days ahead; the cutoff of 31 Mar passed, its run not yet made
    monthly.reminder_days = 30
    monthly.save()
    member = make_member()
    buy(member, "88", when=at("2026-03-10"))
    expire_points(now=at("2026-03-30"))  # every cutoff before March's ran

    # when the reminders run first, then the expiry, then the reminders the next day
    first = send_expiry_reminders(now=at("2026-04-02"))
    expire_points(now=at("2026-04-02", 12))
    next_day = send_expiry_reminders(now=at("2026-04-03"))

    # then nobody was told of 30 April before the late run; the next day, only what it
    # left (nothing: March's run took the 88 points)
    assert (first, next_day) == (0, 0)
    assert not Notification.objects.filter(kind="expiry_reminder").exists()
    assert summary(member, now=at("2026-04-03"))["available"] == 0


# Preview


def test_preview_and_run_agree(make_member, buy, monthly, capsys):
    a, b, gold = make_member(), make_member(), make_member()
    buy(a, "120", when=at("2026-03-02"))
    buy(b, "1000", when=at("2026-03-03"))
    buy(gold, "4000", when=at("2026-03-03"))
    call_command("preview_expiry", "--date", "2026-03-20")
    out = capsys.readouterr().out
    assert "Next cutoff: 31 March 2026" in out
    assert f"{a.external_id}" in out and f"{b.external_id}" in out
    assert gold.external_id not in out
    assert "2 members, 1,220 points at stake" in out
    assert not LedgerEntry.objects.filter(kind="expiry").exists()

    expire_points(now=at("2026-04-01", 1))
    expired = dict(
        LedgerEntry.objects.filter(kind="expiry").values_list("member__external_id", "points")
    )
    assert expired == {a.external_id: -120, b.external_id: -1100}


def test_E2_a_redemption_after_an_unprocessed_cutoff_is_cancelled_once_the_job_ran(
    member, buy, monthly
):
    # given 100 available at the 31 Jan cutoff, redeemed at 01:00 on 1 Feb, the job late
    buy(member, "100", when=at("2026-01-10"))
    tote = Reward.objects.create(name="Tote bag", points_cost=100)
    redemption = redeem(
        member=Member.objects.get(pk=member.pk), reward=tote, now=at("2026-02-01", 1)
    )

    # when it is cancelled before the job ran: refused, saying why, nothing written
    with pytest.raises(ValidationError, match="The points expiry of 31 Jan 2026 has not finished"):
        cancel_redemption(redemption=redemption, reason="Changed mind", now=at("2026-02-01", 2))

    # then the job, run, took nothing (the redemption spent the expiring points first);
    # cancelled now, the redemption gives its points back
    expire_points(now=at("2026-02-01", 6))
    assert not LedgerEntry.objects.filter(member=member, kind="expiry").exists()
    cancel_redemption(redemption=redemption, reason="Changed mind", now=at("2026-02-01", 7))
    assert summary(member)["available"] == 100
    call_command("check_ledger")


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_E2_a_redemption_while_the_job_runs_never_takes_the_same_points_twice(
    member, buy, monthly, monkeypatch
):
    # given 100 available at the 31 Jan cutoff, and a customer redeeming them at 00:05
    # while the job computes what is at stake (on another connection)
    buy(member, "100", when=at("2026-01-10"))
    tote = Reward.objects.create(name="Tote bag", points_cost=100)
    insert_entries, redeemed = expiry_service.sql.insert_expiry_entries, []

    def redeeming_meanwhile(*args, **kwargs):
        def customer():
            try:
                redeemed.append(redeem(member=member, reward=tote, now=at("2026-02-01", 0)))
            except ValidationError as refused:
                redeemed.append(refused)
            finally:
                connections.close_all()

        thread = threading.Thread(target=customer)
        thread.start()
        thread.join(1)  # done at once, or waiting for the member
        threads.append(thread)
        return insert_entries(*args, **kwargs)

    threads = []
    monkeypatch.setattr(expiry_service.sql, "insert_expiry_entries", redeeming_meanwhile)

    # when the job runs
    expire_points(now=at("2026-02-01", 0))
    threads[0].join(10)

    # then the points are taken once: the redemption waited for the job, and was refused
    (refused,) = redeemed
    assert isinstance(refused, ValidationError)
    assert Member.objects.get(pk=member.pk).points_balance == 0
    assert [e.points for e in LedgerEntry.objects.filter(member=member, kind="expiry")] == [-100]
    call_command("check_ledger")


def test_E3_between_a_cutoff_and_its_run_the_summary_names_that_cutoff(member, buy, monthly):
    # given 100 available at the 31 Mar cutoff, whose job has not run at 00:02 on 1 April
    buy(member, "100", when=at("2026-03-10"))
    window = at("2026-04-01", 0).replace(minute=2)

    # when a till reads the member then, and again once the job ran
    before = api_summary(Member.objects.get(pk=member.pk), programme(), now=window)
    expire_points(now=window.replace(minute=5))
    after = api_summary(Member.objects.get(pk=member.pk), programme(), now=window.replace(minute=6))

    # then it said the 100 go at the 31 March cutoff, then nothing at 30 April
    assert before["next_expiry"] == {"cutoff": date(2026, 3, 31), "points": 100}
    assert after["next_expiry"] is None


def test_E2_the_preview_of_a_passed_cutoff_counts_members_by_their_tier_then(
    make_member, buy, monthly, staff
):
    # given a Silver member with 1,100 points at 31 January, Gold by a status match on
    # 1 February before the job ran
    member = make_member("M-S")
    buy(member, "1100", when=at("2026-01-10"))
    grant_status(
        member=member,
        tier=Tier.objects.get(code="gold"),
        until=date(2026, 6, 30),
        reason="Competitor card",
        by=staff,
        now=at("2026-02-01", 1),
    )

    # when the preview of the 31 January cutoff is asked for
    by_tier, members = expiry_preview(date(2026, 1, 31))

    # then the member and points are counted under Silver, the tier the run reads, in
    # the table and in the list of members
    assert by_tier == [("Silver", 1, summary(member)["available"])]
    assert [(row["member__external_id"], row["tier_then"]) for row in members] == [
        ("M-S", "Silver")
    ]


def test_the_preview_of_a_cutoff_already_processed_says_so(member, buy, monthly):
    # given 100 points that expired at the 31 January cutoff
    buy(member, "100", when=at("2026-01-10"))
    expire_points(now=at("2026-02-01", 1))
    out = io.StringIO()

    # when the dry run is asked about that cutoff
    call_command("preview_expiry", "--date", "2026-01-20", stdout=out)

    # then it says the run happened, not that the points are still at stake
    assert out.getvalue().startswith(
        "The expiry of 31 January 2026 has run: 1 member, 100 points expired."
    )


def test_E3_between_a_cutoff_and_its_run_the_summary_reads_the_tier_then(
    make_member, buy, monthly, staff
):
    # given a Silver member at the 31 January cutoff, Gold (whose points never expire)
    # by a status match at 00:01 on 1 February, before the job ran
    member = make_member("M-S")
    buy(member, "1100", when=at("2026-01-10"))
    window = at("2026-02-01", 0).replace(minute=1)
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=member, tier=gold, until=date(2026, 6, 30), reason="Card", by=staff, now=window
    )

    # when a till reads the member at 00:02, then the job runs at 00:05
    read = api_summary(Member.objects.get(pk=member.pk), programme(), now=window.replace(minute=2))
    expire_points(now=window.replace(minute=5))

    # then the summary said what the run took: the Silver points of the cutoff
    (taken,) = LedgerEntry.objects.filter(member=member, kind="expiry").values_list(
        "points", flat=True
    )
    assert read["next_expiry"] == {"cutoff": date(2026, 1, 31), "points": -taken}


def test_the_expiry_runs_list_shows_its_figures_as_staff_read_them(admin_client):
    from points.models import ExpiryRun

    ExpiryRun.objects.create(cutoff=date(2026, 3, 31), members=2489, points=1133511)

    page = admin_client.get("/admin/points/expiryrun/").content.decode()

    assert "2,489" in page and "1,133,511" in page
