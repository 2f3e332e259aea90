"""The shared cache on Redis (CACHE_URL=redis://...) keeps Django's cache contract that
the API's rate limit counts on (django-ratelimit: add, then incr)."""

import pytest
from django.core.cache import caches

from tests.conftest import run_together

on_redis = pytest.mark.skipif(
    not caches["default"].__class__.__name__ == "RedisCache",
    reason="needs Redis (CACHE_URL=redis://...)",
)


@pytest.fixture
def cache():
    cache = caches["default"]
    cache.delete_many(["counted", "never-added"])
    yield cache
    cache.delete_many(["counted", "never-added"])


@on_redis
def test_a_counter_counts_and_keeps_its_expiry(cache):
    assert cache.add("counted", 1, 60)
    assert not cache.add("counted", 1, 60)  # a second request of the window

    assert cache.incr("counted") == 2
    assert cache.incr("counted", 5) == 7
    assert cache.decr("counted") == 6
    assert 0 < cache._cache.get_client().ttl(cache.make_and_validate_key("counted")) <= 60


@on_redis
def test_incrementing_a_key_not_there_is_refused_and_creates_nothing(cache):
    with pytest.raises(ValueError, match="not found"):
        cache.incr("never-added")

    assert cache.get("never-added") is None


@on_redis
def test_increments_at_once_are_all_counted(cache):
    cache.add("counted", 0, 60)

    run_together(8, lambda i: [cache.incr("counted") for _ in range(50)])

    assert cache.get("counted") == 400
