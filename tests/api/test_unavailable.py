"""A till's request the database cannot serve in time (a member held by an import past
the web's lock timeout, the database restarting): 503 with Retry-After, as a problem,
nothing written, and the same request again counts once (found by an audit of outages)."""

import pytest

from points.models import Transaction
from tests.api.conftest import assert_problem, post
from tests.conftest import held_by_another, postgres_only, summary

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.usefixtures("web_lock_timeout")
def test_a_purchase_for_a_member_held_past_the_lock_timeout_is_503_and_counts_once_later(
    api, make_member, purchase
):
    # given: a member an import holds
    member = make_member()
    body = purchase(member, amount="100.00")

    # when: a till records a purchase for them meanwhile
    with held_by_another(member):
        refused = post(api, "/api/v1/transactions", body)

    # then: 503, with when to try again, and nothing written
    problem = assert_problem(refused, 503)
    assert refused["Retry-After"] == "5"
    assert "Send the same request again" in problem["detail"]
    assert not Transaction.objects.filter(external_id=body["external_id"]).exists()
    assert summary(member)["lifetime"] == 0

    # and the same request once the import is done counts once
    assert post(api, "/api/v1/transactions", body).status_code == 201
    assert post(api, "/api/v1/transactions", body).status_code == 200
    assert summary(member)["lifetime"] == 100
