"""Webhook events delivered per second by real Celery workers to a local receiver.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \
        python bench/webhooks.py [--members 100000] [--workers 2]

Works in a scratch database (see synthetic.py). Loads --members members, writes one
`member.enrolled` event each for one endpoint (the outbox as a bulk job leaves it),
then starts --workers `celery worker` processes (Procfile.prod's concurrency: 2) and
times from the first beat tick until every delivery is delivered. The receiver is a
threaded HTTP server in this process, on 127.0.0.1; every signature it got is checked
with standardwebhooks afterwards. Prints deliveries per second and the attempts made.
"""

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from synthetic import copy_members, start, timed


def main():
    args, bands = start(__doc__, "webhooks", workers=2)

    from django.db.models import Max
    from django.utils import timezone
    from standardwebhooks import Webhook

    from api import webhook_endpoints
    from api.tasks import send_webhooks_task
    from core import events
    from core.models import WebhookDelivery, WebhookEndpoint
    from members.models import Member
    from tests.api.receiver import start_receiver
    from tests.workers import redis_url, running_workers, wait_until

    if redis_url() is None:
        sys.exit("needs CELERY_BROKER_URL=redis://...")
    joined = timezone.now() - timedelta(days=30)
    with timed(f"load {args.members:,} members"):
        copy_members((pk, joined, bands[0][0], 0, 0, None) for pk in range(1, args.members + 1))
    receiver, server = start_receiver()
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[events.EventType.MEMBER_ENROLLED])
    )
    with timed(f"write {args.members:,} events"):
        events.record_many(
            events.EventType.MEMBER_ENROLLED, Member.objects.values_list("pk", "pk").iterator()
        )
    total = WebhookDelivery.objects.count()
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    with tempfile.TemporaryDirectory() as logs:
        with running_workers([f"bench{i}" for i in range(1, args.workers + 1)], Path(logs)) as (
            queue,
            _,
        ):
            started = time.perf_counter()
            send_webhooks_task.apply_async(queue=queue)
            # Beat's every-5-seconds tick, as `make serve` runs it.
            while not wait_until(lambda: not pending.exists(), seconds=5):
                send_webhooks_task.apply_async(queue=queue)
            elapsed = time.perf_counter() - started
    server.shutdown()
    signer = Webhook(endpoint.secret)
    for received in receiver.received:
        signer.verify(received.body, received.headers)
    attempts = WebhookDelivery.objects.aggregate(most=Max("attempts"))["most"]
    print(
        f"delivered {total:,} events in {elapsed:.2f} s: {total / elapsed:,.0f} a second "
        f"with {args.workers} worker processes; {len(receiver.received):,} requests received, "
        f"all signatures valid; at most {attempts} attempt(s) per event"
    )


if __name__ == "__main__":
    main()
