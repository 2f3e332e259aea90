import logging
import time
from datetime import datetime

from celery import group, shared_task
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from core.jobs import (
    CHUNK_OF_A_RUN,
    RETRY_WHEN_UNAVAILABLE,
    id_chunks,
    start_run,
    tick,
    unfinished_runs,
)
from members.models import Member
from tiers.models import DegradationPolicy
from tiers.selectors import nights_missed
from tiers.services import degrade_chunk, recalculate_all_tiers

log = logging.getLogger(__name__)


@shared_task(**CHUNK_OF_A_RUN)  # its catch-up is chunks too: redelivered if its worker dies
def degrade_inactive_members_task(now: str | None = None) -> None:
    """Beat: degradation (D2) as of now, shared out to the workers in member-id chunks,
    after what is owed from before (catch_up_degradation). Every chunk is given the
    same `now`, so the run is one instant however long it takes."""
    now = now or timezone.now().isoformat()
    catch_up_degradation(datetime.fromisoformat(now))
    run, left = start_run("degradation", now, id_chunks(Member))
    if left:
        policy = policy_of_the_run()
        group(degrade_chunk_task.si(run.pk, now, *chunk, policy) for chunk in left).delay()


POLICY_FIELDS = ["enabled", "inactivity_days", "levels_per_step"]


def policy_of_the_run() -> dict:
    """The degradation policy as a run starts, given to each of its chunks."""
    return model_to_dict(DegradationPolicy.current(), fields=POLICY_FIELDS)


def catch_up_degradation(now: datetime) -> None:
    """What is owed from before `now`'s day, done here and oldest first, so that each
    drop is recorded on the day its run was due, and an expiry at a cutoff in between
    takes what the preview and the reminders said it would (D2, E2). The expiry job
    calls it too, before a cutoff: after downtime it runs first (00:05, before 03:15).
    - the chunks of an earlier run left unfinished (its worker killed, its messages
      lost), with that run's instant: running a chunk twice changes nothing, and the
      earlier run ends instead of showing as running for ever;
    - the nights whose run did not happen (the workers or beat down), each as of the
      start of its day, as the expiry job catches up its cutoffs (E3)."""
    for run, left in unfinished_runs("degradation", besides=now.isoformat()):
        for chunk in left:  # a run's key is its instant
            degrade_chunk_task(run.pk, run.key, *chunk)
    for night in nights_missed(now):
        key = night.isoformat()
        run, left = start_run("degradation", key, id_chunks(Member))
        for chunk in left:
            degrade_chunk_task(run.pk, key, *chunk)


@shared_task(**CHUNK_OF_A_RUN)
def degrade_chunk_task(
    run_id: int, now: str, first_id: int, last_id: int, policy: dict | None = None
) -> int:
    """D2 for the members with ids in [first_id, last_id], under the run's `policy`
    (policy_of_the_run; by default the policy now); the last chunk logs the run."""
    policy = DegradationPolicy(**policy) if policy else None
    with transaction.atomic():
        changed = degrade_chunk(
            now=datetime.fromisoformat(now), first_id=first_id, last_id=last_id, policy=policy
        )
        run = tick(run_id, first_id, changed)
    if run:
        log.info("degradation: at %s members=%d in %.1fs", now, run.total(), run.seconds)
    return changed


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def recalculate_all_tiers_task() -> int:
    started = time.monotonic()
    changed = recalculate_all_tiers()
    log.info("tier recalculation: %d members moved in %.1fs", changed, time.monotonic() - started)
    return changed
