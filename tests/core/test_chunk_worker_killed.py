"""A worker process killed in the middle of a chunk of a nightly job (a deploy's SIGKILL,
the OOM killer): the chunk goes back to the queue and another process finishes the run
the same night, once (found by an audit: the run stayed "0 of 1" until the next night,
and the members of the chunk kept their tier a day)."""

import subprocess
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.models import JobRun
from members.models import Member, Notification, TierChange
from tests.conftest import postgres_only, session_of_its_own
from tests.workers import redis_only, running_workers, wait_until
from tiers.tasks import degrade_inactive_members_task


def waiting_on_a_lock(database: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        )
        return cursor.fetchone()[0] > 0


@postgres_only
@redis_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunk_whose_worker_process_is_killed_is_run_again_the_same_night(
    make_member, buy, degradation, tmp_path, celery_eager
):
    # given: six Silver members without a purchase for 100 days, due to drop to Bronze
    now = timezone.now()
    members = [make_member(joined_at=now - timedelta(days=400)) for _ in range(6)]
    for member in members:
        buy(member, "1600", when=now - timedelta(days=100))
    settings = connection.settings_dict
    # A name no other run on this machine gives its worker (pgrep looks at every process).
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    held = session_of_its_own()

    # `with held`: closed whatever happens, or its lock would hold the test database's
    # flush (and the whole run) for ever
    with held, running_workers([name], tmp_path, pool="prefork") as (queue, logs):
        # when: the chunk is under way (it waits for a member another session holds) and
        # the process running it is killed
        held.execute("SELECT 1 FROM members_member WHERE id = %s FOR UPDATE", [members[3].pk])
        degrade_inactive_members_task.apply_async(queue=queue)
        assert wait_until(lambda: waiting_on_a_lock(settings["NAME"]), seconds=60), logs
        worker = subprocess.run(
            ["pgrep", "-o", "-f", f"hostname={name}@"], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["pkill", "-9", "-P", worker], check=True)  # its pool process
        held.rollback()  # the other session ends

        # then: the run finishes that night, by the new pool process
        run = JobRun.objects.filter(job="degradation")
        assert wait_until(lambda: run.filter(finished_at__isnull=False).exists(), seconds=60), logs[
            name
        ].read_text()

    # and each member dropped once: one tier change and one message each
    assert "WorkerLostError" in logs[name].read_text()
    assert set(Member.objects.values_list("effective_tier__code", flat=True)) == {"bronze"}
    assert TierChange.objects.filter(reason="degradation").count() == 6
    assert Notification.objects.filter(kind="degradation").count() == 6
