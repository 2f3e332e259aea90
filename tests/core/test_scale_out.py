"""Expiry and degradation shared out to the workers in member-id chunks: the same result
as one in-process run, whatever the chunk size, the number of workers, a chunk run twice
or a failure retried."""

import logging
import random
import re
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from core.jobs import id_chunks, start_run, tick
from core.models import JobChunk, JobRun
from members.models import Member, Notification, TierChange
from points.expiry_selectors import cutoff_instant
from points.models import ExpiryPolicy, ExpiryRun, LedgerEntry, PointDefinition
from points.services import expire_points
from points.tasks import expire_chunk_task, expire_points_task
from tests.conftest import postgres_only
from tests.workers import redis_only, running_workers, wait_until
from tiers.selectors import Ranking
from tiers.services import degrade_inactive_members
from tiers.tasks import degrade_inactive_members_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def cutoffs(tiers):
    """The last two month ends, with monthly expiry on since the first: both pending."""
    last = timezone.localdate().replace(day=1) - timedelta(days=1)
    first = last.replace(day=1) - timedelta(days=1)
    ExpiryPolicy.objects.update_or_create(pk=1, defaults={"cycle": "monthly", "starts_on": first})
    return first, last


def programme_with_points(count: int, cutoffs) -> None:
    """`count` members over the seed tiers (some degraded), with points available at the
    first cutoff, points still pending at it, spending after it, and points earned
    before the second. Written in bulk; caches and tiers agree with the ledger."""
    ranking = Ranking()
    purchase = PointDefinition.objects.get(handle="purchase-points").pk
    first, second = (cutoff_instant(day) for day in cutoffs)
    rng = random.Random(8)
    members, entries = [], []
    for i in range(count):
        available, pending, later = rng.randint(0, 6000), rng.randint(1, 300), rng.randint(1, 300)
        spent = rng.randint(0, min(available + pending, 500)) if i % 3 else 0
        lifetime = available + pending + later
        qualified = ranking.qualified_for(lifetime).pk
        effective = ranking.lower(qualified, 1).pk if i % 7 == 0 else qualified
        code = f"S-{i:06d}"
        members.append(
            (code, f"{code}@example.com", "", "", "", first - timedelta(days=60))
            + (qualified, effective, qualified, lifetime - spent, lifetime, second)
        )
        earn, spend = ("earn", purchase, True), ("redemption", None, False)
        for points, issued, accrue, kind in [
            (available, first - timedelta(days=20), first - timedelta(days=20), earn),
            (pending, first - timedelta(days=2), first + timedelta(days=3), earn),
            (-spent, first + timedelta(days=5), first + timedelta(days=5), spend),
            (later, second - timedelta(days=10), second - timedelta(days=10), earn),
        ]:
            if points:
                entries.append((code, points, True, issued, accrue, "", issued, *kind))
    insert_rows(Member, MEMBER_COLUMNS, members)
    ids = dict(Member.objects.values_list("external_id", "pk"))
    insert_rows(LedgerEntry, ENTRY_COLUMNS, ((ids[code], *rest) for code, *rest in entries))


MEMBER_COLUMNS = ["external_id", "email", "first_name", "last_name", "phone", "joined_at"]
MEMBER_COLUMNS += ["qualified_tier_id", "effective_tier_id", "best_tier_id"]
MEMBER_COLUMNS += ["points_balance", "lifetime_points", "last_purchase_at"]
ENTRY_COLUMNS = ["member_id", "points", "redeemable", "issued_at", "accrue_at", "reason"]
ENTRY_COLUMNS += ["created_at", "kind", "definition_id", "counts_toward_tier"]


def insert_rows(model, columns, rows) -> None:
    """Test data straight into a table, thousands of rows a second: COPY on PostgreSQL,
    one executemany elsewhere."""
    table, names = model._meta.db_table, ", ".join(columns)
    adapt = connection.ops.adapt_datetimefield_value
    rows = [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def expiry_outcome():
    """What expiry leaves: the entries by member and cutoff, the members' balances and
    the cutoffs recorded as done."""
    return {
        "entries": sorted(
            LedgerEntry.objects.filter(kind="expiry").values_list("member", "cutoff", "points")
        ),
        "members": sorted(Member.objects.values_list("pk", "points_balance", "expired_through")),
        "runs": sorted(ExpiryRun.objects.values_list("cutoff", "members", "points")),
    }


def degradation_outcome():
    return {
        "members": sorted(Member.objects.values_list("pk", "qualified_tier", "effective_tier")),
        "history": sorted(
            TierChange.objects.filter(reason="degradation").values_list(
                "member", "from_tier", "to_tier"
            )
        ),
        "messages": sorted(
            Notification.objects.filter(kind="degradation").values_list("member", flat=True)
        ),
    }


def run_summaries(outcome) -> list[str]:
    """The log line of each cutoff's run, up to its duration."""
    return [
        f"expiry: cutoff {day} members={members} points={points} in "
        for day, members, points in outcome["runs"]
    ]


def rolled_back(run, outcome):
    """The outcome of `run` in this process, undone afterwards."""
    with transaction.atomic():
        run()
        result = outcome()
        transaction.set_rollback(True)
    return result


def test_chunked_expiry_of_two_cutoffs_equals_the_in_process_run(cutoffs, settings, caplog):
    # given
    programme_with_points(60, cutoffs)
    expected = rolled_back(expire_points, expiry_outcome)
    settings.JOB_CHUNK_SIZE = 7
    caplog.set_level(logging.INFO)

    # when
    expire_points_task.delay()

    # then
    assert expiry_outcome() == expected
    assert len(expected["entries"]) > 40 and len(expected["runs"]) == 2
    assert [(r.key, r.chunks.count()) for r in JobRun.objects.order_by("key")] == [
        (day.isoformat(), 9) for day in cutoffs
    ]
    assert not JobChunk.objects.filter(done_at=None).exists()
    assert all(line in caplog.text for line in run_summaries(expected))
    call_command("check_ledger")


def test_the_next_cutoff_starts_only_when_every_chunk_of_the_previous_is_done(cutoffs, settings):
    # given
    programme_with_points(30, cutoffs)
    settings.JOB_CHUNK_SIZE = 10
    first, second = (day.isoformat() for day in cutoffs)
    run, chunks = start_run("expiry", first, id_chunks(Member))

    # when: all chunks of the first cutoff but one are done
    for first_id, last_id in chunks[:-1]:
        expire_chunk_task.delay(run.pk, first, first_id, last_id)
    # then
    assert not ExpiryRun.objects.exists()
    assert not JobRun.objects.filter(key=second).exists()

    # when: the last one
    expire_chunk_task.delay(run.pk, first, *chunks[-1])
    # then: the first cutoff is recorded and the second one ran
    assert sorted(ExpiryRun.objects.values_list("cutoff", flat=True)) == list(cutoffs)


def test_a_chunk_run_twice_writes_nothing_the_second_time(cutoffs, settings):
    # given
    programme_with_points(30, cutoffs)
    settings.JOB_CHUNK_SIZE = 10
    first = cutoffs[0].isoformat()
    run, chunks = start_run("expiry", first, id_chunks(Member))
    written = expire_chunk_task.delay(run.pk, first, *chunks[0]).get()
    after_once = expiry_outcome()

    # when
    again = expire_chunk_task.delay(run.pk, first, *chunks[0]).get()

    # then
    assert written > 0 and again == 0
    assert expiry_outcome() == after_once
    assert run.chunks.get(first_id=chunks[0][0]).result == written
    assert JobRun.objects.get(pk=run.pk).finished_at is None


def test_the_last_chunk_delivered_again_after_its_worker_was_lost_starts_the_next_cutoff(
    cutoffs, settings, monkeypatch
):
    # given: one chunk per cutoff; the worker of the first's is lost just after its
    # commit, before it started the next cutoff
    programme_with_points(30, cutoffs)
    expected = rolled_back(expire_points, expiry_outcome)
    settings.JOB_CHUNK_SIZE = 1_000
    first = cutoffs[0].isoformat()
    run, chunks = start_run("expiry", first, id_chunks(Member))
    with monkeypatch.context() as lost:
        lost.setattr(expire_points_task, "delay", mock.Mock(side_effect=SystemExit("SIGKILL")))
        with pytest.raises(SystemExit):
            expire_chunk_task(run.pk, first, *chunks[0])

    # when: the message comes back (CHUNK_OF_A_RUN: reject_on_worker_lost)
    expire_chunk_task.delay(run.pk, first, *chunks[0])

    # then: the second cutoff ran too, the same as one run without the loss
    assert sorted(ExpiryRun.objects.values_list("cutoff", flat=True)) == list(cutoffs)
    assert expiry_outcome() == expected


def test_a_chunk_that_fails_is_retried_without_double_effect(cutoffs, settings, monkeypatch):
    # given: the database fails once, after a chunk's expiry entries were written
    programme_with_points(30, cutoffs)
    expected = rolled_back(expire_points, expiry_outcome)
    settings.JOB_CHUNK_SIZE = 10
    calls = []

    def tick_failing_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return tick(*args)

    monkeypatch.setattr("points.tasks.tick", tick_failing_once)

    # when
    expire_points_task.delay()

    # then: the chunk ran again, and the whole run equals one run without failure
    assert len(calls) == 2 * 3 + 1
    assert expiry_outcome() == expected


def test_chunked_degradation_equals_the_in_process_run(
    make_member, buy, degradation, settings, caplog
):
    # given: members of every tier whose last purchases go back 0 to 480 days
    now = timezone.now()
    for i in range(25):
        member = make_member(joined_at=now - timedelta(days=600))
        amount = ["200", "1500", "4000", "9000"][i % 4]
        buy(member, amount, when=now - timedelta(days=20 * i, hours=12))
    expected = rolled_back(degrade_inactive_members, degradation_outcome)
    settings.JOB_CHUNK_SIZE = 4
    caplog.set_level(logging.INFO)

    # when
    degrade_inactive_members_task.delay()

    # then
    assert degradation_outcome() == expected
    assert len(expected["history"]) > 10
    run = JobRun.objects.get(job="degradation")
    assert run.chunks.count() == 7 and run.finished_at is not None
    assert f"degradation: at {run.key} members={len(expected['history'])} in " in caplog.text


@postgres_only
@redis_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_share_one_chunked_expiry_and_match_a_single_process_run(
    cutoffs, tmp_path, celery_eager
):
    # given: 20,000 members, and what one process would make of them
    programme_with_points(20_000, cutoffs)
    expected = rolled_back(expire_points, expiry_outcome)

    # when: two worker processes share chunks of 500 members (40 per cutoff)
    with running_workers(["one", "two"], tmp_path, JOB_CHUNK_SIZE="500") as (queue, logs):
        expire_points_task.apply_async(queue=queue)
        last_line = f"expiry: cutoff {cutoffs[1]} members="

        def chunks_done() -> dict:  # the chunks each worker's log says it ran
            text = {name: log.read_text() for name, log in logs.items()}
            return {
                name: len(re.findall(r"expire_chunk_task\[[^\]]+\] succeeded", log))
                for name, log in text.items()
            }

        # Until the last summary, and each chunk's line: on a machine busy with the other
        # tests (a browser, the schema's fuzzing), 80 chunks took over a minute
        wait_until(
            lambda: (
                any(last_line in log.read_text() for log in logs.values())
                and sum(chunks_done().values()) >= 80
            ),
            seconds=180,
        )
    text = {name: log.read_text() for name, log in logs.items()}

    # then: both took chunks, and the result is the single-process one
    took = chunks_done()
    assert all(took.values()) and sum(took.values()) == 80, took
    assert expiry_outcome() == expected, text
    entries = expected["entries"]
    assert len({(member, cutoff) for member, cutoff, _ in entries}) == len(entries) > 10_000
    assert all(line in "".join(text.values()) for line in run_summaries(expected))
    call_command("check_ledger")


def test_a_run_is_started_with_its_chunks_or_not_at_all():
    # given the database failing between the run and its chunks
    with mock.patch.object(JobChunk.objects, "bulk_create", side_effect=RuntimeError("lost")):
        with pytest.raises(RuntimeError):
            start_run("expiry", "2026-01-31", [(1, 100)])

    # then no run without chunks is left, which would never finish: a new start sends all
    assert not JobRun.objects.filter(job="expiry", key="2026-01-31").exists()
    _, left = start_run("expiry", "2026-01-31", [(1, 100)])
    assert left == [(1, 100)]


def test_a_degradation_run_whose_chunk_was_lost_is_finished_by_the_next_run(
    make_member, buy, degradation, settings
):
    # given: yesterday's run, whose chunks never ran (a worker killed in the middle of a
    # chunk acknowledges its message: it is not sent again)
    now = timezone.now()
    for i in range(8):
        member = make_member(joined_at=now - timedelta(days=600))
        buy(member, ["1500", "4000"][i % 2], when=now - timedelta(days=100 + 10 * i))
    settings.JOB_CHUNK_SIZE = 4
    yesterday = (now - timedelta(days=1)).isoformat()
    lost, _ = start_run("degradation", yesterday, id_chunks(Member))

    # when: tonight's run
    degrade_inactive_members_task.delay()

    # then: yesterday's run is finished too, not shown running for ever, and the
    # members are degraded once
    assert JobRun.objects.get(pk=lost.pk).finished_at is not None
    assert not JobChunk.objects.filter(done_at=None).exists()
    history = degradation_outcome()["history"]
    assert len(history) == len(set(history)) > 0


def test_a_member_restored_with_id_0_is_in_the_nightly_run(tiers, buy, degradation, settings):
    """Found by a review: the chunks started at id 1 at the lowest, and the job never
    reached a member whose id is 0 (a row restored from another system)."""
    # given: a Silver member with id 0, without a purchase for 100 days, and others
    now = timezone.now()
    bronze = tiers["bronze"]
    restored = Member.objects.create(
        pk=0,
        external_id="M-RESTORED",
        email="restored@example.com",
        joined_at=now - timedelta(days=400),
        qualified_tier=bronze,
        effective_tier=bronze,
        best_tier=bronze,
    )
    buy(restored, "1600", when=now - timedelta(days=100))
    settings.JOB_CHUNK_SIZE = 4

    # when
    degrade_inactive_members_task.delay()

    # then: dropped to Bronze by the run
    assert Member.objects.get(pk=0).effective_tier.code == "bronze"
    assert TierChange.objects.filter(member_id=0, reason="degradation").count() == 1
