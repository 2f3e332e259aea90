"""Imports from the CX Manager (DESIGN.md, "Imports and grants from the CX Manager"):
a file uploaded and stored, checked by a worker (the dry run), confirmed, imported by
a worker; each step followed by the page through core.progress.

The import itself is the same service as the command's: a batch only stores the
file, runs it in the background, and keeps what happened. Its import commits with
the batch's "Imported" in one transaction; a worker killed in the middle leaves the
database as it was, and the page then says so and offers to run it again."""

import io
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from core import progress
from core.db import connection_lost, retryable, violated
from core.exports import escape_formula, spreadsheet_writer
from core.models import ImportBatch, JobChunk
from core.private_files import sweep_pending
from points.csv_rows import bad_rows

Status = ImportBatch.Status
SHOWN_ERRORS = 1_000  # on the batch's page; all of them in its errors file


@dataclass(frozen=True)
class Door:
    """How a kind of file is read and imported: `read(stream)` gives (rows, errors),
    `run(rows, errors=, dry_run=, batch=, on_chunk=)` gives a report."""

    read: object
    run: object


def _doors() -> dict:
    from points.grant_rows import read_grants
    from points.member_rows import read_members
    from points.resources import read_transactions
    from points.services.grants import import_grants
    from points.services.importing import import_transactions
    from points.services.member_import import import_members

    def transactions(rows, *, errors, dry_run, batch, on_chunk):
        return import_transactions(
            rows, errors=errors, dry_run=dry_run, batch=batch, on_chunk=on_chunk
        )

    def grants(rows, *, errors, dry_run, batch, on_chunk):
        # Attributed to the user who uploaded the file (DESIGN.md).
        return import_grants(
            rows, by=batch.uploaded_by, errors=errors, dry_run=dry_run, batch=batch
        )

    def members(rows, *, errors, dry_run, batch, on_chunk):
        return import_members(rows, errors=errors, dry_run=dry_run, batch=batch, on_chunk=on_chunk)

    return {
        ImportBatch.Kind.TRANSACTIONS: Door(read_transactions, transactions),
        ImportBatch.Kind.GRANTS: Door(read_grants, grants),
        ImportBatch.Kind.MEMBERS: Door(read_members, members),
    }


def kinds() -> set[str]:
    """The kinds of file the CX Manager imports."""
    return set(_doors())


def upload(*, kind: str, file, by) -> ImportBatch:
    """Store an uploaded file as a new batch and queue its check."""
    if kind not in _doors():
        raise ValidationError({"kind": "Choose what the file holds."})
    batch = ImportBatch(kind=kind, file_name=file.name[:255], size=file.size, uploaded_by=by)
    batch.started_at = timezone.now()
    _store(batch, file.name, file)
    _queue("check", batch)
    return batch


def import_now(*, kind: str, data: bytes, file_name: str, by):
    """Import a file in the web request that confirms it (Transactions > Import, the
    library's preview then Confirm): stored and kept as a batch like an upload,
    uploaded and confirmed by `by`, its rows naming it, so that the Imports list has
    every import whatever its door. Returns the import's report."""
    batch = ImportBatch(
        kind=kind,
        file_name=file_name[:255],
        size=len(data),
        uploaded_by=by,
        imported_by=by,
        status=Status.IMPORTING,
        started_at=timezone.now(),
    )
    _store(batch, file_name, ContentFile(data))
    return _step(batch.pk, Status.IMPORTING, dry_run=False)


def _store(batch: ImportBatch, name: str, content) -> None:
    """Store the batch's file and save the batch. A file whose batch could not be saved
    is deleted: no batch would name it, and delete_old_files finds files by their
    batch (a file of customer codes kept for ever)."""
    batch.file.save(name, content, save=False)
    try:
        batch.save()
    except BaseException:
        batch.file.delete(save=False)
        raise


def confirm(*, batch: ImportBatch, by) -> ImportBatch:
    """Queue the import of a checked batch (once: a second confirmation does nothing)."""
    check_runnable(batch, by=by)
    confirmed = ImportBatch.objects.filter(pk=batch.pk, status=Status.CHECKED).update(
        status=Status.IMPORTING,
        imported_by=by,
        started_at=timezone.now(),
        finished_at=None,
    )
    if not confirmed:
        raise ValidationError("This import is not waiting for confirmation.")
    batch.refresh_from_db()
    _queue("run", batch)
    return batch


def run_again(*, batch: ImportBatch, by=None) -> ImportBatch:
    """Run again the step of a failed batch: its import if it was confirmed, else its
    check."""
    check_runnable(batch, by=by)
    step, status = ("run", Status.IMPORTING) if batch.imported_by_id else ("check", Status.CHECKING)
    again = ImportBatch.objects.filter(pk=batch.pk, status=Status.FAILED).update(
        status=status, failure="", started_at=timezone.now(), finished_at=None
    )
    if not again:
        raise ValidationError("Only a failed import can be run again.")
    batch.refresh_from_db()
    _queue(step, batch)
    return batch


def check_runnable(batch: ImportBatch, *, by=None) -> None:
    """What a batch needs to be checked or imported, said before it is queued:
    - once checked, a row not imported before;
    - its file, deleted IMPORT_FILE_DAYS after the upload (delete_old_files);
    - for grants, an uploader who may still grant points: the grants are given in
      their name (their permission or staff status may have been taken away since),
      and, for the staff user `by` who would confirm or run them, that uploader: points
      given in a user's name are given by that user's own decision (G4)."""
    if batch.status == Status.CHECKED and batch.rows and not (batch.new or batch.updated):
        raise ValidationError(  # a file sent twice: confirming it would write nothing
            f"Nothing to import: every row of this file was imported before ({batch.skipped:,} "
            "already imported, by an earlier file or a till)."
        )
    if not batch.file:
        raise ValidationError(
            f"The file was deleted {settings.IMPORT_FILE_DAYS} days after it was uploaded, "
            "as every import's file is: upload it again."
        )
    if not batch.file.storage.exists(batch.file.name):
        raise ValidationError(FILE_GONE)
    if batch.kind == ImportBatch.Kind.GRANTS:
        from points.services.grants import check_granter

        try:
            check_granter(batch.uploaded_by)
        except ValidationError as refused:
            raise ValidationError(
                f"This file's grants would be given in the name of {batch.uploaded_by}, who "
                f"uploaded it: {' '.join(refused.messages)} Upload it again as someone who may."
            ) from None
        if by is not None and by.pk != batch.uploaded_by_id:
            raise ValidationError(
                f"Only {batch.uploaded_by}, who uploaded this file, can import it: its grants "
                "are given in their name and within their goodwill limits."
            )


# Why a step never queued (the broker out of reach) failed at once: its page says so and
# offers to run it again, rather than "Waiting for a worker" for WAITING_MINUTES.
NOT_QUEUED = (
    "The task queue could not be reached, so no worker was given this step. Nothing was "
    "written: run it again."
)


def _fail(batch_id: int, status: str, why: str, *, seconds: float | None = None) -> None:
    """The batch failed, saying why, if it is still at `status` (a step run again or
    finished meanwhile is left as it is). `seconds`: how long a worker worked on it,
    the page's "Took", as _keep's (by default, since it was queued)."""
    now, took = timezone.now(), {}
    if seconds is not None:
        took["started_at"] = now - timedelta(seconds=seconds)
    ImportBatch.objects.filter(pk=batch_id, status=status).update(
        status=Status.FAILED, failure=why, finished_at=now, **took
    )


def _failed_unless_running(batch_id: int, status: str, why: str) -> bool:
    """_fail, unless the step's own transaction still holds the batch: its worker lives,
    and only its heartbeat is late (the shared cache away for a moment). The page asks
    again later instead of waiting for the step's lock until the step ends."""
    with transaction.atomic():
        free = ImportBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id)
        if free.values_list("pk", flat=True).first() is None:
            return False
        _fail(batch_id, status, why)
    return True


def _queue(step: str, batch: ImportBatch) -> None:
    """Queue the batch's step once its status is committed; when the broker cannot
    take it, the batch fails at once, saying why on its page."""
    from points.tasks import check_import_task, run_import_task

    task = check_import_task if step == "check" else run_import_task

    def send():
        try:
            task.delay(batch.pk)
        except BrokerUnavailable:
            _fail(batch.pk, batch.status, NOT_QUEUED)

    transaction.on_commit(send)


def progress_key(batch: ImportBatch) -> str:
    return f"import:{batch.pk}:{batch.started_at.timestamp()}"


# A step no worker has taken for this long, while no worker is busy with another
# import, is failed: its message was lost (the broker restarted without its queue).
WAITING_MINUTES = 10


def state(batch: ImportBatch) -> dict:
    """What the batch's page shows while a step runs: status and percent done. A step
    whose worker gave no sign of life for a minute is marked failed; so is one that no
    worker took in WAITING_MINUTES while none was busy with another import."""
    if batch.status in (Status.CHECKING, Status.IMPORTING):
        key = progress_key(batch)
        # Why it ended, which its worker could not record (the database away), or why
        # it is taken to have ended.
        failure = progress.read(key).get("ended") or _silent(batch, key)
        if failure and _failed_unless_running(batch.pk, batch.status, failure):
            batch.refresh_from_db()
        else:
            figures = progress.read(key)
            label = batch.get_status_display() if figures else _waiting(batch)
            return {
                "status": batch.status,
                "label": label,
                "percent": figures.get("percent", 0),
                "done": False,
            }
    return {
        "status": batch.status,
        "label": batch.get_status_display(),
        "percent": 100,
        "done": True,
    }


def _waiting(batch: ImportBatch) -> str:
    """What a step no worker has taken yet says: after a minute, how long, and the
    likely cause (no worker running: Operations tell whoever runs them)."""
    minutes = int((timezone.now() - batch.started_at).total_seconds() // 60)
    if minutes < 1:
        return "Waiting for a worker"
    return (
        f"Waiting for a worker for {minutes} min: is one running? (An import also waits "
        "behind the nightly jobs.)"
    )


def _silent(batch: ImportBatch, key: str) -> str | None:
    """Why a step that says nothing is failed, if it is: its worker died, or its task
    was lost."""
    if progress.stalled(key):
        return (
            "The worker running this import stopped before it ended "
            "(no sign of life for a minute). Nothing was written: run it again."
        )
    if _lost(batch, key):
        return (
            f"No worker has taken this import in {WAITING_MINUTES} minutes, and none "
            "is busy with another: its place in the queue was lost (the task queue "
            "restarted). Nothing was written: run it again."
        )
    return None


def _lost(batch: ImportBatch, key: str) -> bool:
    """No worker took the step in WAITING_MINUTES, and the workers are not busy with
    another import's step, alive, nor with a nightly job's chunks, one done within
    WAITING_MINUTES: either would explain the wait (the queue is behind them)."""
    waited = timedelta(minutes=WAITING_MINUTES)
    if progress.read(key) or timezone.now() - batch.started_at < waited:
        return False
    others = ImportBatch.objects.filter(status__in=(Status.CHECKING, Status.IMPORTING))
    if any(
        progress.read(progress_key(other)) and not progress.stalled(progress_key(other))
        for other in others.exclude(pk=batch.pk).only("pk", "started_at")
    ):
        return False
    chunks = JobChunk.objects.filter(run__finished_at=None, done_at__gte=timezone.now() - waited)
    return not chunks.exists()


def check(batch_id: int) -> None:
    """The dry run of a batch: counts and errors, nothing written."""
    _step(batch_id, Status.CHECKING, dry_run=True)


def run(batch_id: int) -> None:
    """The import of a confirmed batch, in one transaction with its "Imported"."""
    _step(batch_id, Status.IMPORTING, dry_run=False)


# An import the database refused for what another writer did at the same moment is
# run again, up to this often in all (again_if_refused).
TRIES = 3
# The ids a row is recorded under once (P8), whoever records it; and a customer code,
# enrolled once (by a till, while a members file that has it as new is imported).
IDS = {"transaction_external_id_unique", "ledger_external_id_unique", "member_external_id_unique"}


def again_if_refused(step):
    """step(), an import (a file read and imported in one transaction), run again when
    the database refused it for what another writer did at the same moment. Nothing
    of the one refused was written, and the import run again sees what the other wrote:
    - PostgreSQL aborted it to break a deadlock: every writer locks members in id
      order, but a referrer merged into a newer account is locked after its friend;
    - another import, a grant or a till recorded one of its ids meanwhile for another
      member (writers of other members do not wait for each other, and the unique id
      judges): run again, that row is listed as imported before with other content,
      as for a file imported after the other;
    - a till enrolled one of a members file's new codes meanwhile: run again, the
      file's row updates that member, as a file imported after the enrolment does."""
    for attempt in range(1, TRIES + 1):
        try:
            return step()
        except (OperationalError, IntegrityError) as refused:
            if attempt == TRIES or not (retryable(refused) or violated(refused, IDS)):
                raise
    return None  # not reached: the last attempt returns or raises


def _step(batch_id: int, status: str, *, dry_run: bool):
    batch = ImportBatch.objects.filter(pk=batch_id, status=status).first()
    if batch is None:
        return  # done, failed or run again since it was queued
    started = time.monotonic()
    try:
        return again_if_refused(lambda: _run_step(batch, status, dry_run=dry_run))
    except Exception as exc:
        # Not a bad row (those are the report's) but the step itself: nothing was
        # written; the page says why and offers to run it again.
        why = f"The import stopped on an error: {_said(exc)} Nothing was written."
        if connection_lost(exc):  # PostgreSQL restarted, say: not the file's fault
            why = DATABASE_LOST
        try:
            _fail(batch.pk, status, why, seconds=time.monotonic() - started)
        except OperationalError:  # still away: the page fails it once back (state)
            progress.ended(progress_key(batch), why)
        raise


DATABASE_LOST = (
    "The import stopped: the connection to the database was lost (it restarted, or could "
    "not be reached). Nothing was written: run it again."
)


FILE_GONE = (
    "The file is no longer where it was stored (moved or deleted outside the CX Manager): "
    "upload it again."
)


def _said(error: Exception) -> str:
    """An error as a sentence: a ValidationError's messages, not its list; a file gone
    from the disk in words, not the server's path to it."""
    if isinstance(error, FileNotFoundError):
        return FILE_GONE
    text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
    return text if text.endswith(".") else f"{text}."


def _run_step(batch: ImportBatch, status: str, *, dry_run: bool):
    """The step, in one transaction with what the batch keeps of it: its report."""
    batch_id = batch.pk
    door = _doors()[batch.kind]
    started = time.monotonic()
    locked = []  # the batch, whose errors report is deleted if the step does not commit
    with progress.Progress(progress_key(batch)) as shown, _reports_kept_if_saved(locked):
        # Two runs of one batch (a message delivered twice) never overlap.
        batch = ImportBatch.objects.select_for_update().filter(pk=batch_id, status=status).first()
        if batch is None:
            return
        locked.append(batch)
        size = max(batch.size, 1)

        def read(count):  # reading the file is the first half of the bar
            shown.report(percent=min(50, int(50 * count / size)))

        def on_chunk(done, total):  # computing and writing, the second
            shown.report(percent=50 + int(50 * done / max(total, 1)))

        with batch.file.open("rb") as stored:
            rows, errors = door.read(progress.counted(stored, read))
            report = door.run(rows, errors=errors, dry_run=dry_run, batch=batch, on_chunk=on_chunk)
        _keep(batch, report, dry_run=dry_run, seconds=time.monotonic() - started)
    return report


@contextmanager
def _reports_kept_if_saved(batches: list):
    """A transaction; if it does not commit, the errors report stored meanwhile for a
    batch put in `batches` is deleted: no saved batch names it, and it lists the file's
    customer codes (a step has none before it: an invalid file is never run again)."""
    try:
        with transaction.atomic():
            yield
    except BaseException:
        for batch in batches:
            if batch.errors_file:
                batch.errors_file.delete(save=False)
        raise


def _keep(batch: ImportBatch, report, *, dry_run: bool, seconds: float) -> None:
    """What a step found or did, on the batch (in the step's transaction)."""
    batch.rows, batch.new, batch.skipped = report.rows, report.new, report.skipped
    batch.updated = getattr(report, "updated", 0)
    batch.points = getattr(report, "points", 0)
    # Kept apart from the net points, never netted (docs/rules.md, "Importing").
    batch.taken_back = getattr(report, "taken_back", None)
    batch.lifetime = getattr(report, "lifetime", None)
    batch.given = report.given
    batch.given_back = getattr(report, "given_back", 0)
    batch.members = getattr(report, "members", 0)
    batch.error_count = bad_rows(report.errors)
    batch.first_errors = [_error_cells(e) for e in report.errors[:SHOWN_ERRORS]]
    if report.errors:
        batch.errors_file.save(f"{batch.pk}-errors.csv", _errors_csv(report.errors), save=False)
        batch.status = Status.INVALID
    else:
        batch.status = Status.CHECKED if dry_run else Status.DONE
    batch.finished_at = timezone.now()
    # From now on the step's own start, not its queueing: the page's "Took" is the work
    # (a file waiting for a worker did not take that long).
    batch.started_at = batch.finished_at - timedelta(seconds=seconds)
    batch.save()


def _error_cells(error) -> list:
    line = getattr(error, "line", "")
    return [line, getattr(error, "column", ""), getattr(error, "reason", str(error))]


def _errors_csv(errors) -> ContentFile:
    """Every bad row, as a spreadsheet opens it safely (formulae escaped)."""
    text = io.StringIO()
    writer = spreadsheet_writer(text)
    writer.writerow(["line", "column", "reason"])
    for error in errors:
        writer.writerow([escape_formula(cell) for cell in _error_cells(error)])
    return ContentFile(text.getvalue().encode())


def delete_old_files(*, now=None) -> int:
    """Delete the stored files and error reports of batches uploaded more than
    IMPORT_FILE_DAYS ago, and the errors their pages list (the report's first lines,
    which name the file's customer codes); the batches stay, with their counts. Returns
    how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IMPORT_FILE_DAYS)
    old = (
        ImportBatch.objects.filter(uploaded_at__lt=cutoff)
        .exclude(status__in=[Status.CHECKING, Status.IMPORTING])
        .exclude(file="", errors_file="", first_errors=[])
    )
    deleted = 0
    for batch in old.iterator():
        for stored in (batch.file, batch.errors_file):
            if stored:
                stored.delete(save=False)
        ImportBatch.objects.filter(pk=batch.pk).update(file="", errors_file="", first_errors=[])
        deleted += 1
    sweep_pending()  # and the Transactions page's previews never confirmed
    return deleted
