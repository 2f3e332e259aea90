"""Purchases and returns through the API (DESIGN.md, Integration API; P2, P4): 201
with the points and the member after it, refusals as 404 or 422 with nothing
written, and what one purchase may earn."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from points.models import Transaction
from tests.api.conftest import assert_problem, new_id, post, recently
from tests.api.transaction_answers import RESULT_FIELDS
from tests.conftest import earning_at_the_bounds, ledger_state, summary

pytestmark = pytest.mark.django_db


def returning(bought, amount, **fields):
    return {
        **bought,
        "external_id": new_id("R"),
        "kind": "return",
        "amount": amount,
        "original_external_id": bought["external_id"],
        "occurred_at": recently(0),
        **fields,
    }


# Purchases and returns


def test_a_purchase_answers_201_with_its_points_and_the_member_after_it(api, member, purchase):
    # given
    body = purchase(member, amount="120.50")

    # when
    response = post(api, "/api/v1/transactions", body)

    # then
    assert response.status_code == 201, response.json()
    result = response.json()
    assert set(result) == RESULT_FIELDS
    assert {name: result[name] for name in RESULT_FIELDS - {"occurred_at", "summary"}} == {
        "external_id": body["external_id"],
        "member": member.external_id,
        "kind": "purchase",
        "amount": "120.50",
        "channel": "pos",
        "store": "STORE-12",
        "original_external_id": None,
        "points": 120,  # floor(120.50 x 1 x 1)
    }
    assert datetime.fromisoformat(result["occurred_at"]) == datetime.fromisoformat(
        body["occurred_at"]
    )
    assert result["summary"] == api.get(f"/api/v1/members/{member.external_id}").json()
    assert (result["summary"]["available"], result["summary"]["lifetime"]) == (120, 120)
    assert summary(member, now=timezone.now())["available"] == 120
    txn = Transaction.objects.get(external_id=body["external_id"])
    assert (txn.member_id, txn.kind, txn.amount) == (member.pk, "purchase", Decimal("120.50"))


def test_a_purchase_that_reaches_a_tier_counts_its_bonus_in_points(api, member, purchase):
    response = post(api, "/api/v1/transactions", purchase(member, amount="1000.00"))

    assert response.status_code == 201
    assert response.json()["points"] == 1100  # 1,000 earned and Silver's 100 bonus
    assert response.json()["summary"]["effective_tier"]["code"] == "silver"


def test_P4_a_return_answers_201_with_negative_points(api, member, purchase):
    bought = purchase(member, amount="100.00")
    post(api, "/api/v1/transactions", bought)

    response = post(api, "/api/v1/transactions", returning(bought, "40.00"))

    assert response.status_code == 201, response.json()
    result = response.json()
    assert (result["kind"], result["amount"], result["points"]) == ("return", "40.00", -40)
    assert result["original_external_id"] == bought["external_id"]
    assert (result["summary"]["available"], result["summary"]["lifetime"]) == (60, 60)


def test_P4_a_return_above_what_is_left_is_a_422_with_the_rule_s_message(api, member, purchase):
    # given
    bought = purchase(member, amount="100.00")
    post(api, "/api/v1/transactions", bought)
    post(api, "/api/v1/transactions", returning(bought, "60.00"))
    state = ledger_state()
    refused = returning(bought, "50.00")

    # when
    response = post(api, "/api/v1/transactions", refused)

    # then
    problem = assert_problem(
        response,
        422,
        fields={"amount"},
        detail=f"Cannot return {refused['external_id']}: 50.00 is more than the 40.00 left "
        "to return.",
    )
    assert problem["errors"][0]["message"] == problem["detail"]
    assert ledger_state() == state


def test_a_return_of_an_unknown_purchase_is_a_422_and_records_nothing(api, member):
    state = ledger_state()
    body = {
        "external_id": new_id("R"),
        "member": member.external_id,
        "kind": "return",
        "amount": "10.00",
        "occurred_at": recently(),
        "original_external_id": "P-NEVER",
    }

    response = post(api, "/api/v1/transactions", body)

    assert_problem(response, 422, fields={"original_external_id"})
    assert ledger_state() == state


def test_an_unknown_member_is_a_404_and_records_nothing(api, purchase, tiers):
    body = {**purchase(), "member": "M-NOBODY"}
    state = ledger_state()

    response = post(api, "/api/v1/transactions", body)

    assert_problem(response, 404)
    assert ledger_state() == state


def test_a_purchase_aborted_by_a_database_deadlock_is_made_again_once(
    api, purchase, member, monkeypatch
):
    # given the database aborting the first attempt to break a deadlock (40P01)
    from django.db import OperationalError

    import api.views.transactions as views

    class Deadlock(Exception):
        sqlstate = "40P01"

    real, attempts = views.record_purchase, []

    def deadlocked_once(**fields):
        attempts.append(fields["external_id"])
        if len(attempts) == 1:
            raise OperationalError("deadlock detected") from Deadlock()
        return real(**fields)

    monkeypatch.setattr(views, "record_purchase", deadlocked_once)

    # when
    response = post(api, "/api/v1/transactions", purchase(member))

    # then the till gets its 201, and one transaction was recorded
    assert response.status_code == 201, response.content
    assert len(attempts) == 2
    assert Transaction.objects.filter(external_id=response.json()["external_id"]).count() == 1


# P2: what one purchase may earn


@pytest.fixture
def hundredfold(no_campaigns):
    """The highest rates a marketer may type (100 points per unit, every tier x100),
    with `campaigns` campaigns of x100 running around now."""

    def hundredfold(campaigns=0):
        now, month = timezone.now(), timedelta(days=30)
        earning_at_the_bounds(campaigns=campaigns, starts_at=now - month, ends_at=now + month)

    return hundredfold


def test_P2_the_largest_purchase_at_the_highest_rates_earns_a_billion_points(
    api, member, purchase, hundredfold
):
    """A till sends the largest purchase allowed while the earn rate and the tier's
    multiplier are at their bounds: it earns the most one purchase may, a billion."""
    # given
    hundredfold()

    # when
    response = post(api, "/api/v1/transactions", purchase(member, amount="100000.00"))

    # then: 100,000 x 100 x 100, and Platinum's bonus (500) on reaching it
    assert response.status_code == 201, response.json()
    assert response.json()["points"] == 1_000_000_500
    assert response.json()["summary"]["lifetime"] == 1_000_000_000


@pytest.mark.parametrize(
    "campaigns, points", [(1, "100,000,000,000"), (5, "10,000,000,000,000,000,000")]
)
def test_P2_a_purchase_that_would_earn_more_than_a_billion_points_is_a_422_naming_the_rule(
    api, member, purchase, hundredfold, campaigns, points
):
    """A till sends the largest purchase while x100 campaigns stack on the highest rates
    (five would pass what the ledger can hold): it reads the rule and what multiplied
    the points, never a server error, and nothing is written."""
    # given
    hundredfold(campaigns)
    state = ledger_state()

    # when
    response = post(api, "/api/v1/transactions", purchase(member, amount="100000.00"))

    # then
    running = ", ".join(f"Hundredfold {n} x100" for n in range(1, campaigns + 1))
    assert_problem(
        response,
        422,
        fields={"amount"},
        detail=f"A purchase earns at most 1,000,000,000 points: this one would earn {points} "
        f"(100000.00 at 100 points per unit, Bronze x100, {running}). Ask a marketer to check "
        "the earn rate, the tiers' multipliers and the campaigns.",
    )
    assert ledger_state() == state
