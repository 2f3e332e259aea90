import logging
import time

from celery import shared_task

from points.services import expire_points, send_expiry_reminders

log = logging.getLogger(__name__)


@shared_task
def expire_points_task() -> int:
    started = time.monotonic()
    written = expire_points()
    log.info("expiry: %d expiry entries written in %.1fs", written, time.monotonic() - started)
    return written


@shared_task
def send_expiry_reminders_task() -> int:
    queued = send_expiry_reminders()
    log.info("expiry reminders: %d queued", queued)
    return queued
