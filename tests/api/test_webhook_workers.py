"""Webhooks sent by real Celery workers, as Procfile.prod runs them (two processes)."""

import pytest

from api import webhook_endpoints
from api.tasks import send_webhooks_task
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from tests.api.receiver import start_receiver
from tests.conftest import postgres_only
from tests.workers import redis_only, running_workers, wait_until

Status = WebhookDelivery.Status


@postgres_only
@redis_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_receiver_that_never_answers_does_not_hold_up_other_endpoints(
    make_member, buy, tmp_path, celery_eager
):
    silent, silent_server = start_receiver()
    silent.hang_seconds = 8  # longer than the timeout below
    listening, listening_server = start_receiver()
    try:
        for receiver in (silent, listening):
            webhook_endpoints.save_endpoint(
                WebhookEndpoint(url=receiver.url, events=[EventType.TRANSACTION_RECORDED])
            )
        txn = buy(make_member(), 10)
        with running_workers(["one", "two"], tmp_path, WEBHOOK_TIMEOUT_SECONDS="4") as (
            queue,
            logs,
        ):
            send_webhooks_task.apply_async(queue=queue)
            # the listening endpoint hears at once, while the silent one holds its sender
            assert wait_until(lambda: listening.received, seconds=3), logs
            # (the silent one's post may reach it a moment after, on a busy machine)
            assert wait_until(lambda: silent.received, seconds=3), logs
            assert len(silent.received) == 1
            assert not WebhookDelivery.objects.filter(
                endpoint__url=silent.url, attempts__gt=0
            ).exists()
            # then the silent one's attempt times out and waits for its retry
            assert wait_until(
                lambda: WebhookDelivery.objects.filter(
                    endpoint__url=silent.url, last_error="No answer in time"
                ).exists(),
                seconds=10,
            )
        assert txn.external_id.encode() in listening.received[0].body
        assert WebhookDelivery.objects.get(endpoint__url=listening.url).status == Status.DELIVERED
        assert WebhookDelivery.objects.get(endpoint__url=silent.url).status == Status.PENDING
    finally:
        silent_server.shutdown()
        listening_server.shutdown()
