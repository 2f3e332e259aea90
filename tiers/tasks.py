import logging
import time

from celery import shared_task

from tiers.services import degrade_inactive_members, recalculate_all_tiers

log = logging.getLogger(__name__)


@shared_task
def degrade_inactive_members_task() -> int:
    started = time.monotonic()
    changed = degrade_inactive_members()
    log.info("degradation: %d members degraded in %.1fs", changed, time.monotonic() - started)
    return changed


@shared_task
def recalculate_all_tiers_task() -> int:
    started = time.monotonic()
    changed = recalculate_all_tiers()
    log.info("tier recalculation: %d members moved in %.1fs", changed, time.monotonic() - started)
    return changed
