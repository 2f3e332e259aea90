"""A worker killed in the middle of an import from the CX Manager: the database is as
it was, the batch says it failed and why, and it runs again to the end."""

import subprocess
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from core import progress
from core.models import ImportBatch
from members.models import Member
from points.models import LedgerEntry, Transaction
from points.services import batches
from points.tasks import check_import_task, run_import_task
from tests.conftest import postgres_only
from tests.workers import redis_only, running_workers, wait_until

Status = ImportBatch.Status
ROWS, MEMBERS = 60_000, 2_000


def status_of(batch) -> str:
    return ImportBatch.objects.get(pk=batch.pk).status


@postgres_only
@redis_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_in_the_middle_leaves_nothing_and_the_batch_runs_again(
    tiers, staff, tmp_path, monkeypatch, celery_eager
):
    entry = Member.entry_tier()
    Member.objects.bulk_create(
        Member(
            external_id=f"K-{n:05d}",
            email=f"k{n}@example.com",
            qualified_tier=entry,
            effective_tier=entry,
            best_tier=entry,
        )
        for n in range(MEMBERS)
    )
    day = timezone.localdate() - timedelta(days=2)
    lines = [
        f"K-T{n},K-{n % MEMBERS:05d},purchase,{n % 90 + 10}.00,{day},pos,," for n in range(ROWS)
    ]
    header = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id"
    file = SimpleUploadedFile("big.csv", ("\n".join([header, *lines]) + "\n").encode())
    queue = {}
    tasks = {"check": check_import_task, "run": run_import_task}
    monkeypatch.setattr(
        batches, "_queue", lambda step, b: tasks[step].apply_async((b.pk,), queue=queue["name"])
    )

    # A name no other run's worker has: pkill looks at every process on the machine (a
    # test running beside this one in another xdist process named its worker "doomed"
    # too, and this one killed it).
    doomed = f"doomed-{uuid.uuid4().hex[:8]}"
    with running_workers([doomed], tmp_path) as (name, logs):
        queue["name"] = name
        batch = batches.upload(kind="transactions", file=file, by=staff)
        assert wait_until(lambda: status_of(batch) == Status.CHECKED, seconds=120), logs
        batch = batches.confirm(batch=ImportBatch.objects.get(pk=batch.pk), by=staff)
        key = batches.progress_key(batch)
        # when the import is half way through, its worker is killed
        assert wait_until(lambda: progress.read(key).get("percent", 0) > 60, seconds=120)
        subprocess.run(["pkill", "-9", "-f", f"hostname={doomed}@"], check=True)

    # then nothing of the file is written, and the page soon says the import failed
    assert Transaction.objects.count() == 0 and LedgerEntry.objects.count() == 0
    monkeypatch.setattr(progress, "STALLED_SECONDS", 6)
    assert wait_until(
        lambda: batches.state(ImportBatch.objects.get(pk=batch.pk))["status"] == Status.FAILED,
        seconds=30,
    )
    assert "stopped before it ended" in ImportBatch.objects.get(pk=batch.pk).failure

    # and it runs again to the end on another worker
    with running_workers(["second"], tmp_path) as (name, logs):
        queue["name"] = name
        batches.run_again(batch=ImportBatch.objects.get(pk=batch.pk))
        assert wait_until(lambda: status_of(batch) == Status.DONE, seconds=180), logs
    assert Transaction.objects.filter(batch=batch).count() == ROWS
    call_command("check_ledger")
    ImportBatch.objects.get(pk=batch.pk).file.delete()
