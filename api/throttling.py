from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from core.unavailable import CACHE_ERRORS, cache_unreachable_logged


class PerKeyThrottle(BaseThrottle):
    """API_RATE requests per key and window (a minute for "1200/min"), counted in the
    shared cache (CACHE_URL: Redis in production), so that every web process counts
    against the same limit. Counted by an atomic increment (django-ratelimit), so that
    requests arriving together are all counted: DRF's own throttle reads the key's
    history and writes it back, and overlapping requests lose each other's counts.

    When the shared cache cannot be reached, requests are let through, and logged:
    the tills keep selling while Redis is down, unlimited for that time."""

    time_left = 1

    def allow_request(self, request, view):
        if request.auth is None:
            return True  # refused by authentication anyway
        try:
            usage = get_usage(
                request, group="api-key", key=_key_of, rate=settings.API_RATE, increment=True
            )
        except CACHE_ERRORS as unreachable:
            cache_unreachable_logged("the API's requests let through uncounted", unreachable)
            return True
        if usage is None:  # RATELIMIT_ENABLE = False: no limit
            return True
        self.time_left = usage["time_left"]
        return not usage["should_limit"]

    def wait(self):
        # Retry-After: when the key's next window starts. django-ratelimit's time_left
        # runs to the window's last whole second, which still counts in it: one more.
        return self.time_left + 1


def _key_of(group, request) -> str:
    return str(request.auth.pk)
