from celery import shared_task

from api import webhooks
from api.services import prune_first_answers
from core.jobs import RETRY_WHEN_UNAVAILABLE


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def prune_first_answers_task() -> int:
    """Beat, daily: drop the API's old first answers."""
    return prune_first_answers()


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def send_webhooks_task() -> int:
    """Beat, every few seconds: one sender for each endpoint with deliveries due.
    Returns how many were queued."""
    endpoints = list(webhooks.endpoints_due().values_list("pk", flat=True))
    for endpoint_id in endpoints:
        send_endpoint_webhooks_task.delay(endpoint_id)
    return len(endpoints)


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def send_endpoint_webhooks_task(endpoint_id: int) -> None:
    """Send one endpoint's due deliveries for a while; queue the next round at once when
    some are left, so a backlog drains without waiting for beat."""
    if webhooks.send_due(endpoint_id=endpoint_id):
        send_endpoint_webhooks_task.delay(endpoint_id)
