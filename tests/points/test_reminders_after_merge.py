"""E4 after a merge (M5): the account kept holds both accounts' points at stake at the
coming cutoff. A reminder it was sent with another figure is out of date, and one not
sent yet would give the wrong figure: the member is told once more, with both accounts'
points, by the reminder run (queued at once when the merge commits, and daily)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from members.models import Notification
from members.services import merge_members, send_pending_notifications
from points.models import ExpiryPolicy
from points.services import adjust_points, send_expiry_reminders

pytestmark = pytest.mark.django_db


@pytest.fixture
def reminder_day_come(db):
    """Monthly expiry from today, reminders 40 days before: this month's end is within
    them, so each reminder run reminds whoever has points at stake then."""
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on, policy.reminder_days = "monthly", timezone.localdate(), 40
    policy.save()
    return policy


@pytest.fixture
def points_of(staff):
    def give(member, points):
        adjust_points(
            member=member,
            points=points,
            reason="Welcome",
            by=staff,
            now=timezone.now() - timedelta(days=1),
        )

    return give


def told(member) -> list[str]:
    """The subjects of the e-mails the member was sent by the run that sends them."""
    send_pending_notifications()
    theirs = [m for m in mail.outbox if m.to == [member.email]]
    mail.outbox[:] = [m for m in mail.outbox if m not in theirs]
    return [m.subject for m in theirs]


def cutoff_words() -> str:
    today = timezone.localdate()
    month_end = (today.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return f"{month_end:%-d %B}"


def merge(keep, old, staff):
    return merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")


def test_a_survivor_told_of_its_own_points_is_told_again_with_both_accounts_after_a_merge(
    keep, old, staff, points_of, reminder_day_come
):
    # given: both accounts reminded and told (300 and 800 points at stake)
    points_of(keep, 300)
    points_of(old, 800)
    send_expiry_reminders()
    assert told(keep) == [f"300 points expire on {cutoff_words()}"]

    # when: merged, and the next reminder run
    merge(keep, old, staff)
    send_expiry_reminders()

    # then: told once more, with both accounts' points; and once only
    assert told(keep) == [f"1,100 points expire on {cutoff_words()}"]
    send_expiry_reminders()
    assert told(keep) == []


def test_a_survivors_reminder_not_sent_yet_goes_with_both_accounts_points_only(
    keep, old, staff, points_of, reminder_day_come
):
    # given: M-KEEP's reminder of 300 points queued, not sent yet (the mail server down)
    points_of(keep, 300)
    points_of(old, 800)
    send_expiry_reminders()

    # when: merged, and the next reminder run
    merge(keep, old, staff)
    send_expiry_reminders()

    # then: one e-mail, with the figure of both; not the 300 first
    assert told(keep) == [f"1,100 points expire on {cutoff_words()}"]


def test_a_survivor_never_reminded_is_told_the_points_of_the_duplicates_dropped_reminder(
    keep, old, staff, points_of, reminder_day_come
):
    # given: only M-OLD had points at stake; its reminder is queued
    points_of(old, 800)
    send_expiry_reminders()

    # when
    merge(keep, old, staff)
    send_expiry_reminders()

    # then: M-OLD's reminder was dropped (M5); M-KEEP is told
    assert told(old) == []
    assert told(keep) == [f"800 points expire on {cutoff_words()}"]


def test_a_merge_that_moves_nothing_at_stake_tells_nothing_again(
    keep, old, staff, points_of, reminder_day_come
):
    # given: M-KEEP told of its 300 points; M-OLD holds nothing
    points_of(keep, 300)
    send_expiry_reminders()
    told(keep)

    # when
    merge(keep, old, staff)
    send_expiry_reminders()

    # then
    assert told(keep) == []
    assert Notification.objects.filter(member=keep, kind="expiry_reminder").count() == 1


def test_the_member_is_told_when_the_merge_commits_without_waiting_for_the_days_run(
    keep, old, staff, points_of, reminder_day_come, on_commit
):
    # given: M-KEEP told of its 300 points in the morning's run
    points_of(keep, 300)
    points_of(old, 800)
    send_expiry_reminders()
    told(keep)

    # when: merged in the afternoon (the cutoff may be tonight)
    on_commit(lambda: merge(keep, old, staff))

    # then
    assert told(keep) == [f"1,100 points expire on {cutoff_words()}"]
