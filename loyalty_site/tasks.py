from celery import shared_task
from django.utils import timezone

from core import figures
from core.jobs import RETRY_WHEN_UNAVAILABLE
from loyalty_site.sites import kept_figures
from points.selectors import programme


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def warm_dashboard_task() -> None:
    """Beat, every minute: compute the dashboard's kept figures (and the expiry
    preview's, kept with them) when an import, a job or a programme change made them
    out of date, or once they are RENEWED_SECONDS old, before they reach WARMED_SECONDS
    and a visit would wait for them (seconds at a million members). Nothing when they
    are younger. Reaches the web processes through a shared cache (CACHE_URL, Redis in
    production)."""
    kept_figures(programme(), timezone.now(), max_age=figures.RENEWED_SECONDS)
