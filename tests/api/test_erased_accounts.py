"""An account whose customer was erased at their request earns nothing more, through
the API as by hand and by a file (found by an audit: a till's purchase and an app's
review credited an "ERASED-..." account with points nobody could ever use); a return of
a purchase it made still takes its points back."""

import pytest

from members.services import erase_member
from tests.api.conftest import assert_problem, new_id, post, recently
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def erased(api, purchase, make_member, staff):
    """A member who bought 100.00 through the API, then was erased: (account, purchase id)."""
    member = make_member()
    bought = purchase(member)
    assert post(api, "/api/v1/transactions", bought).status_code == 201
    return erase_member(member=member, by=staff), bought["external_id"]


def test_a_purchase_or_an_action_for_an_erased_account_is_a_422_and_earns_nothing(
    api, erased, purchase
):
    account, _ = erased
    before = ledger_state()
    said = (
        f"{account.external_id} was erased at the customer's request: it receives no more "
        "points, which could never be used."
    )

    bought = post(api, "/api/v1/transactions", purchase(account, "20.00"))
    reviewed = post(
        api,
        "/api/v1/actions",
        {
            "external_id": new_id("A"),
            "member": account.external_id,
            "definition": "write-a-review",
            "occurred_at": recently(),
        },
    )

    assert_problem(bought, 422, fields={"member"}, detail=said)
    assert_problem(reviewed, 422, fields={"member"}, detail=said)
    assert ledger_state() == before


def test_a_return_of_an_erased_account_s_purchase_still_takes_its_points_back(
    api, erased, purchase
):
    account, original = erased
    body = purchase(account, kind="return", original_external_id=original)

    returned = post(api, "/api/v1/transactions", body | {"occurred_at": recently(0)})

    assert returned.status_code == 201, returned.json()
    assert returned.json()["points"] == -100
