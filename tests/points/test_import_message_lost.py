"""An import whose queue message is lost before a worker takes it (the broker restarted
without its queue, the queue purged): the page does not say "Waiting for a worker" for
ever; once no worker has taken it for a while, and none is busy with another import,
it is failed with why, and "Run it again" queues it afresh."""

import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core import progress
from core.models import ImportBatch
from points.services import batches

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media", "alice")]
Status = ImportBatch.Status

GOOD = (
    "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
    "T-1,M-0001,purchase,120.50,2026-03-01T10:00:00+01:00,pos,S-1,\n"
)


def upload(client, name="march.csv"):
    """The upload's message is queued after commit, which a test's transaction never
    reaches: it is lost."""
    client.post(
        reverse("admin:core_importbatch_upload"),
        {"kind": "transactions", "file": SimpleUploadedFile(name, GOOD.encode(), "text/csv")},
    )
    return ImportBatch.objects.get(file_name=name)


def state(client, batch) -> dict:
    return client.get(reverse("admin:core_importbatch_state", args=[batch.pk])).json()


def queued_ago(batch, minutes: int) -> None:
    started = batch.started_at - timedelta(minutes=minutes)
    ImportBatch.objects.filter(pk=batch.pk).update(started_at=started)
    batch.refresh_from_db()


def test_an_import_no_worker_takes_is_failed_after_a_while_and_runs_again(login, client):
    login("CX agent")
    batch = upload(client)
    # given its message was lost, the page waits for a worker at first
    assert state(client, batch)["label"] == "Waiting for a worker"
    queued_ago(batch, batches.WAITING_MINUTES - 1)
    assert state(client, batch)["label"] == (
        f"Waiting for a worker for {batches.WAITING_MINUTES - 1} min: is one running? (An "
        "import also waits behind the nightly jobs.)"
    )

    # when no worker has taken it for WAITING_MINUTES
    queued_ago(batch, 2)

    # then the page says it failed and why, and a person can run it again
    shown = state(client, batch)
    assert (shown["status"], shown["done"]) == (Status.FAILED, True)
    assert "No worker has taken this import" in ImportBatch.objects.get().failure
    client.post(reverse("admin:core_importbatch_run_again", args=[batch.pk]))
    batches.check(batch.pk)  # the worker
    assert ImportBatch.objects.get().status == Status.CHECKED


def test_an_import_queued_behind_another_running_waits_for_it(login, client):
    login("CX agent")
    running, queued = upload(client, "first.csv"), upload(client, "second.csv")
    # given a worker is busy with the first import, alive
    progress.caches["progress"].set(
        batches.progress_key(running), {"percent": 40, "alive": time.time()}
    )
    # when the second has waited longer than WAITING_MINUTES behind it
    queued_ago(queued, batches.WAITING_MINUTES + 1)
    # then it is still waiting for a worker, not failed
    assert state(client, queued)["label"].startswith("Waiting for a worker for 11 min")
    assert ImportBatch.objects.get(pk=queued.pk).status == Status.CHECKING


def test_an_import_queued_behind_a_nightly_job_s_chunks_waits_for_them(login, client):
    from django.utils import timezone

    from core.models import JobChunk, JobRun

    login("CX agent")
    batch = upload(client)
    # given the workers busy with the expiry's chunks, the last done a minute ago
    run = JobRun.objects.create(job="expiry", key="2026-12-31")
    JobChunk.objects.create(run=run, first_id=1, last_id=1000, done_at=timezone.now())
    JobChunk.objects.create(run=run, first_id=1001, last_id=2000)
    # when the import has waited longer than WAITING_MINUTES behind them
    queued_ago(batch, batches.WAITING_MINUTES + 1)
    # then it is still waiting for a worker, not failed
    assert state(client, batch)["label"].startswith("Waiting for a worker for 11 min")
    assert ImportBatch.objects.get().status == Status.CHECKING
    # and once the job has finished, a wait that long means its message was lost
    JobRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    assert state(client, batch)["status"] == Status.FAILED


def test_an_import_the_task_queue_cannot_take_fails_at_once_and_runs_again(
    login, client, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the broker out of reach when the file is uploaded
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from points.tasks import check_import_task

    login("CX agent")
    with monkeypatch.context() as down:
        down.setattr(check_import_task, "delay", mock_unreachable(BrokerUnavailable))
        with django_capture_on_commit_callbacks(execute=True):
            batch = upload(client)

    # then: the page says at once that it failed and why, not "Waiting for a worker"
    shown = state(client, batch)
    assert (shown["status"], shown["done"]) == (Status.FAILED, True)
    assert ImportBatch.objects.get().failure == batches.NOT_QUEUED
    # and with the queue back, a person runs it again
    client.post(reverse("admin:core_importbatch_run_again", args=[batch.pk]))
    batches.check(batch.pk)  # the worker
    assert ImportBatch.objects.get().status == Status.CHECKED


def mock_unreachable(error):
    def delay(*args):
        raise error("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    return delay
