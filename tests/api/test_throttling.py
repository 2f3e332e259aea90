"""A rate per key (DESIGN.md, Integration API): over it, a 429 problem with Retry-After
and nothing written; another key keeps its own count."""

import pytest

from api.throttling import PerKeyThrottle
from tests.api.conftest import assert_problem, client_for, post
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(monkeypatch):
    # SimpleRateThrottle reads its rates from this class attribute, bound to
    # REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] when the class is defined.
    monkeypatch.setattr(PerKeyThrottle, "THROTTLE_RATES", {"key": "3/min"})


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


def test_requests_without_a_key_are_401_not_counted_against_a_key(api, member, three_a_minute):
    for _ in range(5):
        assert_problem(client_for(None).get(f"/api/v1/members/{member.external_id}"), 401)

    assert api.get(f"/api/v1/members/{member.external_id}").status_code == 200
