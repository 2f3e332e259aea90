from celery import shared_task

from api import webhooks
from api.services import forget_erased_codes, forget_first_answers, prune_first_answers
from core.jobs import RETRY_WHEN_UNAVAILABLE, queue_or_run


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def prune_first_answers_task() -> int:
    """Beat, daily: drop the API's old first answers, and those naming codes erased
    whose own task was lost."""
    return prune_first_answers() + forget_erased_codes()


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def forget_first_answers_task(codes: list[str] | None = None) -> int:
    """After an erasure: drop the first answers naming the erased codes. (`codes`: the
    messages queued by the release before, which named them.)"""
    return (forget_first_answers(codes) if codes else 0) + forget_erased_codes()


def forget_erased(sender, **kwargs) -> None:
    """members.signals.member_erased: the answers go in a worker, a scan of the table."""
    queue_or_run(forget_first_answers_task)


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def give_up_erased_codes_task() -> int:
    """Beat, daily: the erasures' events an endpoint switched off never took lose the
    code they keep."""
    return webhooks.give_up_erased_codes()


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
