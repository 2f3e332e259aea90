import os

from celery import Celery
from django.db import OperationalError as DatabaseUnavailable
from kombu.exceptions import OperationalError as BrokerUnavailable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

app = Celery("loyalty_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Options of the idempotent periodic tasks: when the database or the broker is briefly
# unavailable (a restart, a fail-over, a deadlock), try again later, waiting longer
# each time (about 5 s, 10 s, 20 s... up to 10 minutes, with jitter).
RETRY_WHEN_UNAVAILABLE = {
    "autoretry_for": (DatabaseUnavailable, BrokerUnavailable),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "max_retries": 8,
}
