import logging
from datetime import date

from celery import group, shared_task
from django.db import transaction
from django.utils import timezone

from core.jobs import (
    CHUNK_OF_A_RUN,
    RETRY_WHEN_UNAVAILABLE,
    done_before,
    id_chunks,
    start_run,
    tick,
)
from members.models import Member
from points.services import (
    batches,
    expire_chunk,
    finish_cutoff,
    pending_cutoffs,
    send_expiry_reminders,
)
from points.services.snapshots import take_snapshots
from tiers.tasks import catch_up_degradation

log = logging.getLogger(__name__)


@shared_task(**CHUNK_OF_A_RUN)  # its catch-up is chunks too: redelivered if its worker dies
def expire_points_task() -> None:
    """Beat: start the expiry of the oldest passed cutoff not yet complete (E3), shared
    out to the workers in member-id chunks.

    One cutoff at a time, in order: the chunk that completes a cutoff records it and
    starts this task again for the next one, so every expiry of a cutoff is written
    before the next cutoff reads the balances. Started again while a cutoff is under
    way (after lost messages, or the next day), it sends that cutoff's unfinished
    chunks again: running a chunk twice changes nothing."""
    now = timezone.now()
    cutoffs = pending_cutoffs(now)
    if not cutoffs:
        # A line each run, even one with nothing to do: monitoring alerts on a silent day.
        log.info("expiry: no cutoff due")
        return
    catch_up_degradation(now)  # the tiers at the cutoff, after downtime (D2, E2)
    cutoff = cutoffs[0].isoformat()
    run, chunks = start_run("expiry", cutoff, id_chunks(Member))
    log.info("expiry: cutoff %s, %d chunks sent", cutoff, len(chunks))
    group(expire_chunk_task.si(run.pk, cutoff, first, last) for first, last in chunks).delay()


@shared_task(**CHUNK_OF_A_RUN)
def expire_chunk_task(run_id: int, cutoff: str, first_id: int, last_id: int) -> int:
    """E2 for the members with ids in [first_id, last_id]; the chunk that completes the
    cutoff records it, logs the run and starts the next cutoff."""
    if run := done_before(run_id, first_id):  # delivered again: nothing to do twice
        if run.finished_at:
            expire_points_task.delay()  # the next cutoff, if its start was lost with the worker
        return 0
    day = date.fromisoformat(cutoff)
    with transaction.atomic():
        written = expire_chunk(cutoff=day, first_id=first_id, last_id=last_id)
        run = tick(run_id, first_id, written)
        if run:
            expired = finish_cutoff(day)
    if run:
        log.info(
            "expiry: cutoff %s members=%d points=%d in %.1fs",
            cutoff,
            expired.members,
            expired.points,
            run.seconds,
        )
        expire_points_task.delay()
    return written


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def send_expiry_reminders_task() -> int:
    queued = send_expiry_reminders()
    log.info("expiry reminders: %d queued", queued)
    return queued


# Imports from the CX Manager: not retried on their own (a failed import says why on
# its page, and a person runs it again); a message delivered twice runs once.


@shared_task
def check_import_task(batch_id: int) -> None:
    batches.check(batch_id)


@shared_task
def run_import_task(batch_id: int) -> None:
    batches.run(batch_id)


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def delete_old_import_files_task() -> int:
    """Beat, daily: uploaded files are kept IMPORT_FILE_DAYS days."""
    return batches.delete_old_files()


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def take_snapshots_task() -> int:
    """Beat, daily after midnight: the analytics snapshot of the day that ended, and of
    any day missed before it (points.services.snapshots)."""
    days = take_snapshots()
    log.info("analytics: %d days taken", days)
    return days
