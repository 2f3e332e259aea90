"""A request the database could not serve in time: the database away or restarting, or a
row another transaction held past the web's lock timeout (settings,
DATABASE_LOCK_TIMEOUT). Not a fault of the request: it is answered 503 with when to try
again (the API's problem, the CX Manager's page), and logged without a traceback."""

import logging

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (
    "The database did not answer in time: it is away, or another operation (an import, "
    "say) holds what this request changes."
)


def unavailable_logged(exc: Exception, request) -> None:
    path = getattr(request, "path", "?")
    logger.warning("503 for %s: the database did not answer in time (%s)", path, exc)
