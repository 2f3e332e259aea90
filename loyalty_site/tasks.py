from celery import shared_task
from django.utils import timezone

from core.jobs import RETRY_WHEN_UNAVAILABLE
from loyalty_site.sites import kept_figures
from points.selectors import programme


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def warm_dashboard_task() -> None:
    """Beat, every few minutes: compute the dashboard's kept figures when an import, a
    job or a programme change made them out of date, so that the first visit does not
    wait for them (seconds at a million members). Nothing when they are up to date.
    Reaches the web processes through a shared cache (CACHE_URL, Redis in production)."""
    kept_figures(programme(), timezone.now())
