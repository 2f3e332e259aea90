"""What the web does when a service it needs does not answer.

- The database (away or restarting, or a row another transaction held past the web's
  lock timeout, settings DATABASE_LOCK_TIMEOUT): not a fault of the request, so it is
  answered 503 with when to try again (the API's problem, the CX Manager's page) and
  logged without a traceback.
- The shared cache (Redis: the API's rate, kept figures, an import's progress): the
  request goes on without it, and that is logged once a minute."""

import logging
import time

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (
    "The database did not answer in time: it is away, or another operation (an import, "
    "say) holds what this request changes."
)


def unavailable_logged(exc: Exception, request) -> None:
    # The path as Django's own line has it: a line break sent as %0A in the address
    # would otherwise start a line of the sender's making in the log.
    path = getattr(request, "path", "?").encode("unicode_escape").decode("ascii")
    logger.warning("503 for %s: the database did not answer in time (%s)", path, exc)


# What the shared cache raises when it does not answer: Redis, or a cache's folder.
CACHE_ERRORS = (RedisError, OSError)

# A cache away is said once a minute per process: every request meanwhile would log it.
_CACHE_LOGGED_EVERY_SECONDS = 60
_cache_logged_at = float("-inf")


def cache_unreachable_logged(doing: str, exc: Exception) -> None:
    """The shared cache did not answer, and `doing` ("figures computed for this visit
    alone") instead of failing the request: a warning, once a minute at most."""
    global _cache_logged_at
    now = time.monotonic()
    if now - _cache_logged_at >= _CACHE_LOGGED_EVERY_SECONDS:
        _cache_logged_at = now
        logger.warning("The shared cache did not answer (%s): %s", exc, doing)
