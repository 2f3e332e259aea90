"""The job runs page of the plain admin: how far each chunked run got, a stalled run
told from a running one, in a bounded number of queries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import JobChunk, JobRun

pytestmark = pytest.mark.django_db


def test_operations_see_how_far_each_chunked_job_run_got(client_admin, db):
    from django.utils import timezone

    from core.models import JobChunk, JobRun

    run = JobRun.objects.create(job="expiry", key="2026-03-31")
    JobChunk.objects.create(run=run, first_id=1, last_id=500, done_at=timezone.now(), result=3)
    JobChunk.objects.create(run=run, first_id=501, last_id=1000)

    page = client_admin.get(reverse("admin:core_jobrun_changelist"))

    assert page.status_code == 200
    assert "Cutoff of 31 Mar 2026" in page.content.decode() and "1 of 2" in page.content.decode()
    assert "2026-03-31" not in page.content.decode()
    assert client_admin.get(reverse("admin:core_jobrun_add")).status_code == 403


def test_the_job_runs_page_tells_a_stalled_run_from_a_running_one(client_admin):
    """Found by an audit: "3 of 4" read the same for a run at work and one whose chunk
    messages were lost, which only the job's next run finishes."""
    now = timezone.now()
    moving = JobRun.objects.create(job="expiry", key="2026-03-31", started_at=now)
    JobChunk.objects.create(run=moving, first_id=1, last_id=500, done_at=now, result=3)
    JobChunk.objects.create(run=moving, first_id=501, last_id=1000)
    stalled = JobRun.objects.create(
        job="degradation", key="2026-03-30", started_at=now - timedelta(hours=5)
    )
    JobChunk.objects.create(run=stalled, first_id=1, last_id=500)

    JobRun.objects.create(job="degradation", key="2026-03-31T01:00:00+00:00", started_at=now)

    page = client_admin.get(reverse("admin:core_jobrun_changelist")).content.decode()

    assert "As of 31 Mar 2026 03:00" in page  # a degradation's instant, in Madrid (CEST)
    at = f"{timezone.localtime(stalled.started_at):%-d %b %Y %H:%M}"
    assert f"Stalled: nothing done since {at}; the job&#x27;s next run finishes it" in page
    assert f"Running (last chunk done {timezone.localtime(now):%-d %b %Y %H:%M})" in page


def test_the_job_runs_page_reads_a_bounded_number_of_queries_whatever_the_runs(
    client_admin, django_assert_max_num_queries
):
    """Found at a million members: a join of every run with its chunks took 1 s at
    30,000 runs; the page now reads the chunks of its own runs."""
    now = timezone.now()
    runs = JobRun.objects.bulk_create(
        JobRun(job="expiry", key=f"2026-{1 + n % 12:02d}-28-{n}", started_at=now)
        for n in range(150)
    )
    JobChunk.objects.bulk_create(
        JobChunk(run=run, first_id=first, last_id=first + 99, done_at=now if first else None)
        for run in runs
        for first in (0, 100, 200)
    )

    with django_assert_max_num_queries(8):
        page = client_admin.get(reverse("admin:core_jobrun_changelist"))

    assert page.status_code == 200
    assert page.content.decode().count("2 of 3") == 100  # a page of runs, each counted
