"""A rate per key (DESIGN.md, Integration API): over it, a 429 problem with Retry-After
and nothing written; another key keeps its own count."""

from collections import Counter
from types import SimpleNamespace

import pytest

from tests.api.conftest import assert_problem, client_for, post
from tests.conftest import ledger_state, postgres_only, run_together

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(settings):
    settings.API_RATE = "3/min"


def test_over_its_rate_a_key_gets_a_429_problem_with_retry_after(
    api, shop, member, purchase, three_a_minute
):
    # given three requests within the rate
    for _ in range(3):
        assert api.get(f"/api/v1/members/{member.external_id}").status_code == 200
    state = ledger_state()

    # when
    read = api.get(f"/api/v1/members/{member.external_id}")
    write = post(api, "/api/v1/transactions", purchase(member))

    # then
    for response in (read, write):
        assert_problem(response, 429)
        assert 0 < int(response["Retry-After"]) <= 60
    assert ledger_state() == state
    # another key counts on its own
    other = client_for(shop.secret)
    assert other.get(f"/api/v1/members/{member.external_id}").status_code == 200


@pytest.mark.parametrize("rate", ["3/min", "3/10s"])
def test_a_till_that_waits_retry_after_is_let_through(api, member, settings, monkeypatch, rate):
    """From a review: one that waited exactly Retry-After got a second 429."""
    import django_ratelimit.core

    # given a key over its rate, at a moment of the clock that stands still
    settings.API_RATE = rate
    clock = [1_800_000_000.25]
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: clock[0]))
    url = f"/api/v1/members/{member.external_id}"
    for _ in range(3):
        assert api.get(url).status_code == 200
    wait = int(api.get(url)["Retry-After"])

    # when it sends again a second before Retry-After, then at it
    clock[0] += wait - 1
    early = api.get(url)
    clock[0] += 1
    on_time = api.get(url)

    # then the early one is still over the rate, the one on time is served
    assert early.status_code == 429
    assert on_time.status_code == 200


def test_requests_without_a_key_are_401_not_counted_against_a_key(api, member, three_a_minute):
    for _ in range(5):
        assert_problem(client_for(None).get(f"/api/v1/members/{member.external_id}"), 401)

    assert api.get(f"/api/v1/members/{member.external_id}").status_code == 200


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_requests_at_once_are_all_counted_against_the_rate(till, member, settings):
    # given a rate of 50 a minute
    settings.API_RATE = "50/min"

    # when: eight tills of one key send 25 requests each at the same time
    def till_requests(i):
        client = client_for(till.secret)
        return [client.get(f"/api/v1/members/{member.external_id}") for _ in range(25)]

    results = run_together(8, till_requests)

    # then: 50 answered, the other 150 refused
    statuses = Counter(response.status_code for responses in results for response in responses)
    assert statuses == {200: 50, 429: 150}


def test_when_the_shared_cache_is_down_requests_are_let_through_and_logged(
    api, member, purchase, three_a_minute, settings, caplog
):
    # given a cache nobody answers on
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }

    # when more requests than the rate
    statuses = [api.get(f"/api/v1/members/{member.external_id}").status_code for _ in range(4)]
    written = post(api, "/api/v1/transactions", purchase(member))

    # then every one is answered, and the operators are told once, not at every request
    assert statuses == [200] * 4 and written.status_code == 201
    assert caplog.text.count("the API's requests let through uncounted") == 1
