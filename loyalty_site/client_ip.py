"""The address a staff login comes from, as the lockout counts it (django-axes)."""

from django.conf import settings


def client_ip(request) -> str | None:
    """REMOTE_ADDR; behind TRUSTED_PROXIES proxies (the load balancer: 1), the address
    the outermost of them saw, read from the right of X-Forwarded-For, which each proxy
    appends to: what a client writes there itself comes first and counts for nothing.
    Without it, every login behind a balancer came from the balancer's address, and
    anyone could lock any staff member out by mistyping their name's password."""
    count = settings.TRUSTED_PROXIES
    if count:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        seen = [address.strip() for address in forwarded if address.strip()]
        if len(seen) >= count:
            return seen[-count]
    return request.META.get("REMOTE_ADDR")
