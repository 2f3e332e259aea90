from celery import shared_task

from members.services import OUTBOX_BATCH, send_pending_notifications


@shared_task
def send_notifications_task() -> int:
    """Send what waits in the outbox, batch after batch, as long as whole batches go:
    a batch with a refused message ends the run, so a refused message is tried once a
    run."""
    total = 0
    while (sent := send_pending_notifications()) == OUTBOX_BATCH:
        total += sent
    return total + sent
