"""Celery: the beat rows exist after migrate, and a task goes through a real broker to a
real worker process."""

from decimal import Decimal

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from loyalty_site.celery import app
from members.models import Notification
from members.tasks import send_notifications_task
from points.services import record_purchase
from tests.conftest import at, postgres_only
from tests.workers import redis_only, running_workers, wait_until

BEAT_JOBS = {
    "Degrade inactive members": "tiers.tasks.degrade_inactive_members_task",
    "Expire points": "points.tasks.expire_points_task",
    "Send expiry reminders": "points.tasks.send_expiry_reminders_task",
    "Send notifications": "members.tasks.send_notifications_task",
    "Send webhooks": "api.tasks.send_webhooks_task",
    "Delete old import files": "points.tasks.delete_old_import_files_task",
}


@pytest.mark.django_db
def test_beat_rows_exist_after_migrate_and_name_real_tasks():
    rows = dict(PeriodicTask.objects.values_list("name", "task"))
    assert {name: rows.get(name) for name in BEAT_JOBS} == BEAT_JOBS
    app.loader.import_default_modules()
    assert set(BEAT_JOBS.values()) <= set(app.tasks)
    daily = PeriodicTask.objects.get(name="Degrade inactive members").crontab
    assert str(daily.timezone) == settings.TIME_ZONE


@pytest.mark.django_db
def test_every_beat_row_names_a_task_the_worker_knows():
    """Every job a migration schedules (not only those above): a row naming no task
    would fail each night in the worker's log, and the job would never run."""
    app.loader.import_default_modules()
    rows = dict(PeriodicTask.objects.values_list("name", "task"))
    assert len(rows) >= 10
    assert {name: task for name, task in rows.items() if task not in app.tasks} == {}


@pytest.mark.django_db
def test_the_dashboard_figures_job_runs_every_minute():
    """Within a minute of an import the kept figures are taken again (core.figures)."""
    job = PeriodicTask.objects.get(name="Refresh the dashboard's figures")
    assert (job.task, job.interval.every, job.interval.period) == (
        "loyalty_site.tasks.warm_dashboard_task",
        1,
        "minutes",
    )


def test_celery_reads_the_programme_time_zone():
    assert app.conf.timezone == settings.TIME_ZONE
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


@postgres_only
@redis_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_task_runs_in_a_real_worker_through_redis(make_member, tmp_path, celery_eager):
    member = make_member()
    record_purchase(
        member=member, amount=Decimal("1000"), occurred_at=at("2026-03-01"), external_id="W-1"
    )
    assert Notification.objects.filter(member=member, sent_at=None).count() == 1

    mail = tmp_path / "mail"
    with running_workers(
        ["worker"],
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail),
    ) as (queue, logs):
        send_notifications_task.apply_async(queue=queue)
        wait_until(lambda: not Notification.objects.filter(sent_at=None).exists())
    log = logs["worker"].read_text()
    assert not Notification.objects.filter(sent_at=None).exists(), log
    assert "send_notifications_task" in log and "succeeded" in log, log
    sent = "".join(p.read_text() for p in mail.iterdir())
    assert "Welcome to Silver" in sent and member.email in sent


def test_a_worker_never_reads_a_message_of_the_folder_broker_half_written(tmp_path, monkeypatch):
    # given the zero-server broker, and a worker reading its queue at the very moment a
    # message is being written (kombu's own transport created the file empty first)
    from kombu import Connection
    from kombu.utils import json as kombu_json

    from loyalty_site import queue_folder

    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    with Connection(
        "filesystem://", transport=queue_folder.Transport, transport_options=options
    ) as connection:
        channel = connection.default_channel
        seen = []

        def serialising(payload):
            try:
                seen.append(channel._get("celery"))
            except Exception as exc:  # Empty, or what a half-written file gives
                seen.append(type(exc).__name__)
            return kombu_json.dumps(payload)

        monkeypatch.setattr(queue_folder, "dumps", serialising)

        # when a message is put
        channel._put("celery", {"body": "x"})

        # then the worker found nothing meanwhile, and the whole message afterwards
        assert seen == ["Empty"]
        assert channel._get("celery") == {"body": "x"}
