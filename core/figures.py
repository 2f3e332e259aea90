"""Whole-table figures kept a few minutes (the dashboard's), and the one way to make
them stale.

Every bulk write that moves members or points (an import, a tier recalculation, the
degradation and expiry runs) calls `stale()`. Kept figures are keyed on the figures
generation (a database row, so a worker's job reaches every web process) and on the
caller's version of the configuration (the programme version), so a threshold or
policy change is seen at once too. Single purchases do not make them stale: the page
says when kept figures were taken.

Figures out of date are computed by one process at a time: the others (every agent
opening the dashboard just after an import) wait for its figures instead of each
reading the whole tables at once."""

import time
import uuid

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.models import FiguresGeneration
from core.unavailable import CACHE_ERRORS, cache_unreachable_logged

# How old kept figures may be when shown: older, a visit takes them again.
KEPT_SECONDS = 10 * 60
# The figures a beat job renews (the dashboard's, run every minute): renewed once 9
# minutes old, and shown up to 15 minutes old, so that no visit waits for them while
# the job runs; a visit takes them itself only when the job is late or stopped.
RENEWED_SECONDS = 9 * 60
WARMED_SECONDS = 15 * 60
# How long one process may compute before the others stop waiting for it and compute
# themselves: a web request's longest (gunicorn's timeout, WEB_TIMEOUT), so that a
# process killed while computing holds nobody up for longer. How often they look for
# its figures meanwhile.
COMPUTING_SECONDS = 120
_LOOK_EVERY_SECONDS = 0.2


def stale() -> None:
    """Kept figures are out of date once the current transaction commits (at once
    outside one; never if it rolls back). One statement, whatever was written."""
    transaction.on_commit(_new_generation)


def _new_generation() -> None:
    FiguresGeneration.objects.update_or_create(pk=1, defaults={"token": uuid.uuid4()})


def kept(key: str, compute, *, version="", max_age: int = KEPT_SECONDS) -> dict:
    """{"value": compute(), "as_of": when it was computed}, computed again once older
    than `max_age` seconds, and at once after `stale()` or when `version` changes. The
    generation is read before computing, so figures computed while a job commits are
    kept under the generation they may predate, never under the next one. One process
    computes them; the others asking meanwhile wait for its figures."""
    generation = FiguresGeneration.objects.values_list("token", flat=True).first()
    key = f"figures:{key}:{version}:{generation}"
    try:
        return _kept_in_cache(key, compute, max_age)
    except CACHE_ERRORS as unreachable:  # Redis away: the page still answers
        cache_unreachable_logged("figures computed for this visit alone", unreachable)
        return {"value": compute(), "as_of": timezone.now()}


def _kept_in_cache(key: str, compute, max_age: int) -> dict:
    computing = f"{key}:computing"
    while not _fresh(found := cache.get(key), max_age):
        if cache.add(computing, True, COMPUTING_SECONDS):
            try:
                found = {"value": compute(), "as_of": timezone.now()}
                cache.set(key, found, max(max_age, WARMED_SECONDS))
            finally:
                cache.delete(computing)
            return found
        while cache.get(computing) and not _fresh(found := cache.get(key), max_age):
            time.sleep(_LOOK_EVERY_SECONDS)  # another process computes them: its figures
    return found


def _fresh(found, max_age) -> bool:
    return found is not None and (timezone.now() - found["as_of"]).total_seconds() < max_age
