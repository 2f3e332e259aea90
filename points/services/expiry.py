"""Block expiry (E1-E4): every passed cutoff once, chunk by chunk, and reminders."""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core import events, figures
from core.jobs import id_chunks, lock_in_id_order, queue_or_run
from members.models import Member, Notification
from members.services import drop_unsent
from points.expiry_selectors import (
    cutoff_instant,
    next_cutoff,
    points_at_stake,
    reminder_day,
    unprocessed_cutoffs,
)
from points.models import ExpiryPolicy, ExpiryRun, LedgerEntry
from points.services import sql

Kind = LedgerEntry.Kind


def expire_points(*, now=None) -> int:
    """E3: process every passed cutoff not yet processed, oldest first, in this process.
    Returns the number of expiry entries written. Safe to run twice or concurrently: the
    unique constraint on (member, cutoff) decides, and caches move once per member and
    cutoff. The periodic task shares the same chunks out to the workers instead."""
    now = now or timezone.now()
    written = 0
    for cutoff in pending_cutoffs(now):
        for first_id, last_id in id_chunks(Member):
            written += expire_chunk(cutoff=cutoff, first_id=first_id, last_id=last_id)
        finish_cutoff(cutoff)
    return written


def pending_cutoffs(now) -> list[date]:
    """The passed cutoffs since `starts_on` whose expiry is not complete, oldest first."""
    return unprocessed_cutoffs(ExpiryPolicy.current(), now)


def refuse_until_expiry_ran(what: str, *, now) -> None:
    """E3: points due at a passed cutoff are taken by its run, whatever happens before
    it. A change that would move them out of its reach (a freeze, a merge, the cycle or
    a tier's exemption changed) waits until the run: `what` names it for the message."""
    if cutoffs := pending_cutoffs(now):
        day = date_format(cutoffs[0], "j M Y")
        raise ValidationError(
            f"The points expiry of {day} has not finished: {what} once it has (the nightly "
            "job runs at 00:05), so that points already due cannot escape it."
        )


@transaction.atomic
def expire_chunk(*, cutoff: date, first_id: int, last_id: int) -> int:
    """E2 for the members with ids in [first_id, last_id]: one expiry entry each of
    minus what is at stake, then the cached balances; two statements."""
    end = cutoff_instant(cutoff)
    # The chunk's members first: a redemption of one of them then waits for the chunk
    # (a second or so), rather than spend, while the stake is computed, the points the
    # expiry takes too.
    lock_in_id_order(Member.objects.filter(pk__gte=first_id, pk__lte=last_id), no_key=True)
    written = sql.insert_expiry_entries(
        # A cutoff run has passed, whatever the clock says: its tiers are the history's.
        points_at_stake(cutoff, first_id=first_id, last_id=last_id, now=end),
        cutoff=cutoff,
        at=end,
        reason=f"Points expired at the end of {cutoff:%d %B %Y}",
    )
    # The cache moves once per member and cutoff, whoever wrote the entry.
    sql.count_expiry_in_balances(cutoff=cutoff, first_id=first_id, last_id=last_id)
    if written:
        figures.stale()
        events.record_bulk(
            events.EventType.POINTS_EXPIRED,
            LedgerEntry,
            kind=Kind.EXPIRY,
            cutoff=cutoff,
            transaction=None,  # the job's entries, not a late return's
            member__gte=first_id,
            member__lte=last_id,
        )
    return written


def finish_cutoff(cutoff: date) -> ExpiryRun:
    """Record a cutoff as complete, with its totals, once every chunk of it is written."""
    # The job's entries (a late return's giving some back comes after the run).
    totals = LedgerEntry.objects.filter(
        kind=Kind.EXPIRY, cutoff=cutoff, transaction=None
    ).aggregate(members=Count("pk"), points=Sum("points"))
    run, _ = ExpiryRun.objects.get_or_create(
        cutoff=cutoff,
        defaults={"members": totals["members"], "points": -(totals["points"] or 0)},
    )
    return run


def remind_once_committed() -> None:
    """E4 after a change that puts points at stake at a coming cutoff (a policy saved, a
    freeze ended): once it commits, the reminders are queued at once, as the day's run
    may be over (a cutoff tonight, changed after 09:00). The task queues nothing before
    the reminder day, and nobody twice."""
    from points.tasks import send_expiry_reminders_task  # the tasks import the services

    transaction.on_commit(lambda: queue_or_run(send_expiry_reminders_task))


def retell_after_merge(*, survivor: Member, duplicate: Member, now) -> None:
    """E4 after a merge, once its entries are written, before the duplicate's unsent
    messages are dropped: the survivor's points at stake at each coming cutoff now hold
    the duplicate's. A reminder the survivor was sent with another figure is out of
    date, and one not sent yet is dropped (it would give the wrong figure), so that the
    reminder run tells the member once more, with both accounts' points; a survivor
    never reminded is told as anyone is. When either account had a reminder of a coming
    cutoff, the run is queued once the merge commits, as the day's run may be over."""
    reminders = Notification.objects.filter(
        kind=Notification.Kind.EXPIRY_REMINDER,
        member__in=[survivor, duplicate],
        cutoff__gte=timezone.localdate(now),
        outdated_at=None,
    )
    told = list(reminders.values_list("pk", "member", "cutoff", "points", "sent_at"))
    for pk, member_id, cutoff, points, sent_at in told:
        if member_id != survivor.pk:
            continue
        stake = points_at_stake(cutoff, first_id=survivor.pk, last_id=survivor.pk, now=now)
        if [points] == list(stake.values_list("at_stake", flat=True)):
            continue
        if sent_at:
            Notification.objects.filter(pk=pk).update(outdated_at=now)
        else:
            why = "another account was merged into this one"  # no code: erasure (rules.md)
            drop_unsent(survivor, Notification.objects.filter(pk=pk), why=why)
    if told:
        remind_once_committed()


def send_expiry_reminders(*, now=None) -> int:
    """E4: `reminder_days` before the next cutoff, queue one message per member with
    points at stake; once per member and cutoff (a unique constraint decides), with the
    points.expiring event of each, all or nothing."""
    now = now or timezone.now()
    policy = ExpiryPolicy.current()
    today = timezone.localdate(now)
    cutoff = next_cutoff(policy, today)
    if cutoff is None or reminder_day(policy, cutoff, today) > today:
        return 0
    if pending_cutoffs(now):
        # A passed cutoff still awaits its run (after downtime): the member pages and
        # the API name it, and it takes points the next cutoff's figures count. The
        # next day's run reminds, once the expiry has run (a reminder day passed counts).
        return 0
    # An erased or closed account is told nothing (docs/rules.md, Messages to members):
    # no reminder, so no points.expiring for the brand's systems either.
    stake = points_at_stake(cutoff, now=now).filter(
        member__erased_at=None, member__merged_into=None
    )
    # The reminders and their points.expiring events in one transaction: a run cut
    # short between them (its connection lost, its worker killed) leaves neither, and
    # the next run queues both, where it would have found the reminders queued and
    # reported nothing.
    with transaction.atomic():
        written = sql.insert_expiry_reminders(stake, cutoff=cutoff, now=now)
        if written:  # those this run wrote (at `now`), not those of runs before
            events.record_bulk(
                events.EventType.POINTS_EXPIRING,
                Notification,
                kind=Notification.Kind.EXPIRY_REMINDER,
                cutoff=cutoff,
                created_at=now,
            )
    return written
