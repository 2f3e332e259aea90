"""/healthz for the load balancer: 200 only when the database and the Celery broker answer.

No login, no session: it must stay cheap, since the balancer calls it every few seconds.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

log = logging.getLogger(__name__)

# Seconds the broker has to answer: a probe that hangs is worse than one that fails.
BROKER_TIMEOUT = 2


def database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def broker_ok() -> bool:
    # Read from settings at each call (not from the Celery app, configured once), with
    # the app's transport options: the filesystem transport needs its folders.
    options = {
        **getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        "socket_connect_timeout": BROKER_TIMEOUT,
        "socket_timeout": BROKER_TIMEOUT,
    }
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT, transport_options=options
    ) as broker:
        # One attempt, no retry. Connecting opens a channel, which on Redis sends a PING.
        broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
    return True


CHECKS = {"database": database_ok, "broker": broker_ok}


@never_cache
def healthz(request):
    status = {}
    for name, check in CHECKS.items():
        try:
            status[name] = "ok" if check() else "failed"
        except Exception:  # noqa: BLE001 - any error means "not healthy"; the log has it
            log.exception("health check: %s is unavailable", name)
            status[name] = "unavailable"
    healthy = all(value == "ok" for value in status.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **status}, status=200 if healthy else 503
    )
