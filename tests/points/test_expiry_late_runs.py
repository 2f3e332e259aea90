"""E2-E3 when the job runs late or twice: what staff corrected after a cutoff, a second
catch-up run reaching a cutoff the first has passed (found by a review); and what the
dry run says of a cutoff already run or one after the next."""

import io
import logging
from datetime import date, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from points.models import ExpiryPolicy
from points.services import adjust_points, expire_points
from points.services import expiry as expiry_service
from points.tasks import expire_points_task
from tests.conftest import at, give_return, summary
from tests.points.test_expiry import expiries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("run_at", [0, 11], ids=["on-time", "late"])
def test_E2_points_given_by_mistake_after_the_cutoff_and_taken_back_are_not_spending(
    member, buy, staff, monthly, run_at
):
    """Found by a review: the correction counted as spending, and a late run took
    nothing."""
    # given 100 at the 31 Jan cutoff; an agent gives 500 by mistake and takes them back
    buy(member, "100", when=at("2026-01-10"))
    if run_at == 0:
        expire_points(now=at("2026-02-01", 0))
    adjust_points(
        member=member, points=500, reason="Wrong member", by=staff, now=at("2026-02-01", 9)
    )
    adjust_points(member=member, points=-500, reason="Undo", by=staff, now=at("2026-02-01", 10))

    # when the job runs, on time or late
    expire_points(now=at("2026-02-01", 11))

    # then the same: the 100 of the cutoff expire
    assert expiries(member) == [(date(2026, 1, 31), -100)]
    assert summary(member)["available"] == 0


def test_E3_a_second_run_reaching_a_cutoff_after_the_first_ran_the_next_keeps_the_balance_right(
    member, buy, monthly
):
    # given: two catch-up runs that both listed 31 Jan and 28 Feb; the first has run
    # both for this member, after an offline till's purchase of 30 Jan (and its return)
    # reached us late: 31 Jan took nothing when it ran, 28 Feb took the 50 of 5 Feb
    jan, feb = date(2026, 1, 31), date(2026, 2, 28)
    buy(member, "50", when=at("2026-02-05"))
    expiry_service.expire_chunk(cutoff=jan, first_id=member.pk, last_id=member.pk)
    late = buy(member, "100", when=at("2026-01-30"), now=at("2026-03-02"))
    give_return(member, late, "100", when=at("2026-02-10"))
    expiry_service.expire_chunk(cutoff=feb, first_id=member.pk, last_id=member.pk)

    # when: the second run reaches 31 Jan for this member
    expiry_service.expire_chunk(cutoff=jan, first_id=member.pk, last_id=member.pk)

    # then: 31 Jan was done for them: nothing more is taken, and the balance is the ledger's
    assert expiries(member) == [(feb, -50)]
    assert summary(member)["available"] == 0
    call_command("check_ledger")


def test_E3_a_run_with_no_cutoff_due_says_so_in_the_log(member, buy, monthly, caplog):
    """Found by an operator: deploy.md's monitoring alerts when a daily job has not
    logged a run for a day, and a run with nothing to do logged nothing of its own."""
    # given: every cutoff passed by 2 Feb has run
    buy(member, "100", when=at("2026-01-10"))
    expire_points(now=at("2026-02-01", 0))

    # when: the nightly job runs again on 2 Feb
    with mock.patch("django.utils.timezone.now", return_value=at("2026-02-02", 0)):
        with caplog.at_level(logging.INFO, logger="points.tasks"):
            expire_points_task()

    # then: its line says there was nothing to do
    assert "expiry: no cutoff due" in caplog.text


@pytest.mark.parametrize("change", ["annual", "switched off and on later"])
def test_E3_the_dry_run_of_a_cutoff_processed_before_the_cycle_changed_says_what_it_took(
    member, buy, monthly, change
):
    """Found by an audit of rules.md: it looked for the cutoff under today's cycle, and
    answered with a coming annual cutoff and "0 points at stake"."""
    # given 100 points the monthly run of 31 January took; the marketer then changed
    # the cycle to annual, or switched expiry off and on again from 1 April
    buy(member, "100", when=at("2026-01-10"))
    expire_points(now=at("2026-02-01", 1))
    policy = ExpiryPolicy.current()
    if change == "annual":
        policy.cycle = ExpiryPolicy.Cycle.ANNUAL
    else:
        policy.starts_on = date(2026, 4, 1)
    policy.save()
    out = io.StringIO()

    # when operations ask the dry run about that cutoff
    call_command("preview_expiry", "--date", "2026-01-20", stdout=out)

    # then it says what the run took, not a later cutoff's stake
    assert out.getvalue().startswith(
        "The expiry of 31 January 2026 has run: 1 member, 100 points expired."
    ), out.getvalue()


def test_E3_the_dry_run_of_a_later_cutoff_says_the_next_one_takes_its_points_first(member, buy):
    """Found by an audit of rules.md: it said "Next cutoff" of any date asked, and counted
    points the cutoff before it takes, with nothing to say so."""
    # given monthly expiry from today, 100 points
    today = timezone.localdate()
    ExpiryPolicy.objects.update_or_create(pk=1, defaults={"cycle": "monthly", "starts_on": today})
    buy(member, "100", when=timezone.now() - timedelta(days=1))
    out = io.StringIO()

    # when operations ask about a cutoff two months ahead
    call_command("preview_expiry", "--date", str(today + timedelta(days=62)), stdout=out)

    # then it is not called the next one, and the one before is named
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Cutoff: "), lines
    assert lines[1].startswith("  The cutoff of ") and "comes first" in lines[1], lines
