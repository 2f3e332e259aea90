"""The degradation job beside other writers on PostgreSQL: every writer locks members in
id order (core.jobs.lock_in_id_order), so that none waits for another in a cycle, which
PostgreSQL breaks by aborting one as a deadlock victim."""

import io
import threading
import time as clock
from datetime import date

import pytest
from django.db import connections, transaction

from members.models import Member
from points.member_rows import read_members
from points.services import import_members
from tests.conftest import at, postgres_only
from tiers.models import DegradationPolicy, Tier
from tiers.services import degradation as degradation_service
from tiers.services import degrade_inactive_members, grant_status

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def run(results, name, work):
    """work() in this thread: what it returned or raised is results[name]."""
    try:
        results[name] = work()
    except Exception as exc:  # what each raised is the result
        results[name] = exc
    finally:
        connections.close_all()


def import_of(text):
    def members_import():
        rows, errors = read_members(io.BytesIO(text.encode()))
        return import_members(rows, errors=errors)

    return members_import


def test_the_degradation_job_and_a_members_import_never_deadlock(tiers, make_member, buy):
    # given two inactive Silver members, the lower id with the higher customer code, and
    # a writer holding the first member's lock for a moment
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    first = make_member("M-B", joined_at=at("2025-06-01"))
    second = make_member("M-A", joined_at=at("2025-06-01"))
    for member in (first, second):
        buy(member, "1000", when=at("2026-01-05"))
    text = "external_id,email,first_name\nM-B,m-b@example.com,Bea\nM-A,m-a@example.com,Ada\n"
    held, release, results = threading.Event(), threading.Event(), {}

    def holder():
        try:
            with transaction.atomic():
                list(Member.objects.select_for_update().filter(pk=first.pk))
                held.set()
                release.wait(20)
        finally:
            connections.close_all()

    def degradation():
        return degrade_inactive_members(now=at("2026-12-01"))

    # when the import, then the job, wait behind the holder, which then lets go
    threads = [threading.Thread(target=holder)]
    threads[0].start()
    held.wait(10)
    for name, work in (("import", import_of(text)), ("degradation", degradation)):
        threads.append(threading.Thread(target=run, args=(results, name, work)))
        threads[-1].start()
        clock.sleep(1)
    release.set()
    for thread in threads:
        thread.join(30)

    # then both finish, one after the other: neither is aborted as a deadlock victim
    assert not isinstance(results["import"], Exception), results["import"]
    assert results["degradation"] == 2


def test_a_night_a_status_match_ends_the_job_and_an_import_never_deadlock(
    tiers, make_member, buy, staff, monkeypatch
):
    """Found by an audit of the jobs beside live writes: the job locked the members
    whose match ended, then the inactive ones, each set in id order but not the two
    together; an import locking both in id order waited for the first while holding
    the second."""
    # given an inactive Gold member, and a member of a higher id whose match ended
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    inactive = make_member("M-LOW", joined_at=at("2025-06-01"))
    buy(inactive, "1000", when=at("2026-01-05"))
    matched = make_member("M-HIGH", joined_at=at("2025-06-01"))
    buy(matched, "10", when=at("2026-11-20"))
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=matched,
        tier=gold,
        until=date(2026, 11, 30),
        reason="Competitor card",
        by=staff,
        now=at("2026-11-20"),
    )
    text = (
        "external_id,email,first_name\n"
        "M-LOW,m-low@example.com,Lou\nM-HIGH,m-high@example.com,Hugh\n"
    )
    ending, results = threading.Event(), {}
    members_to_degrade = degradation_service.members_to_degrade

    def slowly(*args, **kwargs):  # a chunk of 5,000 members takes about this long
        ending.set()
        clock.sleep(2)
        return members_to_degrade(*args, **kwargs)

    monkeypatch.setattr(degradation_service, "members_to_degrade", slowly)

    # when the job's chunk runs and, as it does, a members file naming both is imported
    job = threading.Thread(
        target=run,
        args=(results, "degradation", lambda: degrade_inactive_members(now=at("2026-12-01", 3))),
    )
    job.start()
    assert ending.wait(10)
    clock.sleep(0.5)
    members_file = threading.Thread(target=run, args=(results, "import", import_of(text)))
    members_file.start()
    job.join(30)
    members_file.join(30)

    # then both finish: the match ended, the inactive member dropped, the file imported
    assert not isinstance(results["import"], Exception), results["import"]
    assert results["degradation"] == 2
