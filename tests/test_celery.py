"""Celery: the beat rows exist after migrate, and a task goes through a real broker to a
real worker process."""

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import PeriodicTask

from loyalty_site.celery import app
from members.models import Notification
from members.tasks import send_notifications_task
from points.services import record_purchase
from tests.conftest import at, postgres_only

BEAT_JOBS = {
    "Degrade inactive members": "tiers.tasks.degrade_inactive_members_task",
    "Expire points": "points.tasks.expire_points_task",
    "Send expiry reminders": "points.tasks.send_expiry_reminders_task",
    "Send notifications": "members.tasks.send_notifications_task",
}


@pytest.mark.django_db
def test_beat_rows_exist_after_migrate_and_name_real_tasks():
    rows = dict(PeriodicTask.objects.values_list("name", "task"))
    assert {name: rows.get(name) for name in BEAT_JOBS} == BEAT_JOBS
    app.loader.import_default_modules()
    assert set(BEAT_JOBS.values()) <= set(app.tasks)
    daily = PeriodicTask.objects.get(name="Degrade inactive members").crontab
    assert str(daily.timezone) == settings.TIME_ZONE


def test_celery_reads_the_programme_time_zone():
    assert app.conf.timezone == settings.TIME_ZONE
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def _redis_url():
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


@postgres_only
@pytest.mark.skipif(_redis_url() is None, reason="needs CELERY_BROKER_URL=redis://...")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_task_runs_in_a_real_worker_through_redis(make_member, tmp_path, celery_eager):
    member = make_member()
    record_purchase(
        member=member, amount=Decimal("1000"), occurred_at=at("2026-03-01"), external_id="W-1"
    )
    assert Notification.objects.filter(member=member, sent_at=None).count() == 1

    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": _redis_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "loyalty_site",
            "worker",
            "--pool=solo",
            f"--queues={queue}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        app.conf.task_always_eager = False
        send_notifications_task.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Notification.objects.filter(sent_at=None).exists():
            time.sleep(0.5)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0]
    assert not Notification.objects.filter(sent_at=None).exists(), log
    assert "send_notifications_task" in log and "succeeded" in log, log
    sent = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "Welcome to Silver" in sent and member.email in sent
