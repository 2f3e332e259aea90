from rest_framework.throttling import SimpleRateThrottle


class PerKeyThrottle(SimpleRateThrottle):
    """API_RATE requests per key, counted in the shared cache (CACHE_URL: Redis in
    production), so every web process counts against the same limit."""

    scope = "key"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None  # refused by authentication anyway
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
