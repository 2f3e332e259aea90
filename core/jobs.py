"""Periodic jobs shared out to the workers in fixed-size chunks of member ids.

A run is a JobRun row with one JobChunk row per chunk, and one Celery task per chunk.
Each chunk is ticked off in the transaction that does its work, so a chunk counts as
done only once its writes are committed, and a chunk run twice (redelivered after a
worker was lost, or retried) counts once. The tick that leaves nothing outstanding
finishes the run. A chord would keep this count in a result backend instead, apart
from the writes it stands for, and the server-less development set-up has none.
"""

from django.conf import settings
from django.db import OperationalError as DatabaseUnavailable
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.models import JobChunk, JobRun

# Options of the idempotent periodic tasks: when the database or the broker is briefly
# unavailable (a restart, a fail-over, a deadlock), try again later, waiting longer
# each time (about 5 s, 10 s, 20 s... up to 10 minutes, with jitter).
RETRY_WHEN_UNAVAILABLE = {
    "autoretry_for": (DatabaseUnavailable, BrokerUnavailable),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "max_retries": 8,
}
# A chunk of a nightly job (expiry, degradation), or the job's start (which runs the
# nights missed chunk by chunk), whose worker process is killed (a
# deploy's SIGKILL, the OOM killer) goes back to the queue for another process, not
# acknowledged as Celery does by default: its run would otherwise stay unfinished, and
# the members it holds untouched, until the next night. Safe, as every chunk is
# idempotent; and a chunk is a fixed number of members worked on in SQL, so that it
# cannot be the task that kills every worker it reaches (Celery's reason for its default).
CHUNK_OF_A_RUN = {**RETRY_WHEN_UNAVAILABLE, "reject_on_worker_lost": True}


def queue_or_run(task, *args) -> None:
    """task.delay(*args); with the broker out of reach, the task in this process
    instead: a change already committed still gets what must follow it."""
    try:
        task.delay(*args)
    except BrokerUnavailable:
        task(*args)


def id_chunks(model, size: int | None = None) -> list[tuple[int, int]]:
    """Ranges (first, last) of `size` ids (JOB_CHUNK_SIZE) covering every row of
    `model`. Without rows, one empty range, so that a run still has a chunk to finish."""
    size = size or settings.JOB_CHUNK_SIZE
    bounds = model.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return [(1, size)]
    low, high = bounds["low"], bounds["high"]  # 0 or below too (rows restored from elsewhere)
    return [(first, first + size - 1) for first in range(low, high + 1, size)]


def lock_in_id_order(queryset, *, no_key: bool = False) -> None:
    """Lock the rows of `queryset` until the transaction ends (call it inside the
    transaction that needs them), in id order, without reading them into Python: what a
    set-based job does before it computes from rows that others write, as every writer
    of members locks them (one, or several in id order), so that none deadlocks.
    `no_key`: FOR NO KEY UPDATE, which rows that only refer to them (a ledger entry) do
    not wait for. (SQLite has no row locks: its write transaction already excludes
    other writers.)"""
    if not connection.features.has_select_for_update_of:
        return
    locked = queryset.select_for_update(of=("self",), no_key=no_key).order_by("pk")
    sql, params = locked.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS locked", params)


@transaction.atomic
def start_run(job: str, key: str, chunks: list[tuple[int, int]]) -> tuple[JobRun, list]:
    """The run of `job` for `key` and its chunks not done yet. The first call creates it
    with `chunks`; a later one (the run started again after messages were lost) finds
    it and returns what is left, to send again: the chunks are idempotent."""
    run, created = JobRun.objects.get_or_create(job=job, key=key)
    if created:
        JobChunk.objects.bulk_create(
            JobChunk(run=run, first_id=first, last_id=last) for first, last in chunks
        )
    return run, chunks_left(run)


def unfinished_runs(job: str, *, besides: str) -> list[tuple[JobRun, list]]:
    """The runs of `job` other than `besides` not finished, each with its chunks not done
    yet, to send again: a chunk whose message was lost (a broker that restarted without
    keeping its queue) is sent again by nothing but the job's next run. (A chunk whose
    worker was killed goes back to the queue by itself: CHUNK_OF_A_RUN.)"""
    runs = JobRun.objects.filter(job=job, finished_at=None).exclude(key=besides)
    return [(run, chunks_left(run)) for run in runs.order_by("started_at")]


def chunks_left(run: JobRun) -> list[tuple[int, int]]:
    """(first, last) of the run's chunks not done yet, in id order."""
    left = run.chunks.filter(done_at=None).order_by("first_id")
    return list(left.values_list("first_id", "last_id"))


def done_before(run_id: int, first_id: int) -> JobRun | None:
    """The run of this chunk if the chunk was done before, else None: its message is
    delivered again (its worker lost just after the commit), its work is committed, and
    if the run is finished, what its end starts (the next cutoff) may not have been."""
    done = JobChunk.objects.filter(run_id=run_id, first_id=first_id, done_at__isnull=False)
    chunk = done.select_related("run").first()
    return chunk.run if chunk else None


def tick(run_id: int, first_id: int, result: int) -> JobRun | None:
    """Mark a chunk done, inside the transaction of its work. Returns the run if this
    tick finished it; None otherwise, and for a chunk already done (nothing to count
    twice)."""
    # The ticks of one run take turns on its row, so the last one sees all the others.
    run = JobRun.objects.select_for_update().get(pk=run_id)
    now = timezone.now()
    if not run.chunks.filter(first_id=first_id, done_at=None).update(done_at=now, result=result):
        return None
    if run.chunks.filter(done_at=None).exists():
        return None
    run.finished_at = now
    run.save(update_fields=["finished_at"])
    return run
