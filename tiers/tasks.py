import logging
import time
from datetime import datetime

from celery import group, shared_task
from django.db import transaction
from django.utils import timezone

from core.jobs import RETRY_WHEN_UNAVAILABLE, id_chunks, start_run, tick, unfinished_runs
from members.models import Member
from tiers.services import degrade_chunk, recalculate_all_tiers

log = logging.getLogger(__name__)


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def degrade_inactive_members_task() -> None:
    """Beat: degradation (D2) as of now, shared out to the workers in member-id chunks.
    Every chunk is given the same `now`, so the run is one instant however long it takes.
    The chunks of an earlier run left unfinished (its worker killed, its messages lost)
    are sent again first, with that run's instant: running a chunk twice changes nothing,
    and the earlier run ends instead of showing as running for ever."""
    now = timezone.now().isoformat()
    earlier = unfinished_runs("degradation", besides=now)
    for run, left in [*earlier, start_run("degradation", now, id_chunks(Member))]:
        if left:  # a run's key is its instant
            group(degrade_chunk_task.si(run.pk, run.key, *chunk) for chunk in left).delay()


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def degrade_chunk_task(run_id: int, now: str, first_id: int, last_id: int) -> int:
    """D2 for the members with ids in [first_id, last_id]; the last chunk logs the run."""
    with transaction.atomic():
        changed = degrade_chunk(now=datetime.fromisoformat(now), first_id=first_id, last_id=last_id)
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
