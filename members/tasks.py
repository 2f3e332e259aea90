from celery import shared_task

from members.services import send_pending_notifications


@shared_task
def send_notifications_task() -> int:
    """Send what waits in the outbox, batch after batch."""
    sent = total = send_pending_notifications()
    while sent:
        sent = send_pending_notifications()
        total += sent
    return total
