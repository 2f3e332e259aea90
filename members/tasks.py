from celery import shared_task

from members.services import send_pending_notifications

BATCH = 500


@shared_task
def send_notifications_task() -> int:
    """Send what waits in the outbox, batch after batch, as long as whole batches go:
    a batch with a refused message ends the run, so a refused message is tried once a
    run."""
    total = 0
    while (sent := send_pending_notifications(limit=BATCH)) == BATCH:
        total += sent
    return total + sent
