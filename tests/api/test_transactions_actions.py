"""Actions through the API: an action earns its definition's points once, named by
its handle in any case; unknown, inactive or wrong actions are refused."""

import pytest

from points.models import PointDefinition, Transaction
from tests.api.conftest import assert_problem, new_id, post, recently
from tests.api.transaction_answers import RESULT_FIELDS
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db


def action(member, **fields):
    return {
        "external_id": new_id("A"),
        "member": member.external_id,
        "definition": "write-a-review",
        "occurred_at": recently(),
        **fields,
    }


def test_an_action_earns_its_definition_s_points_once(api, member):
    body = action(member)

    first = post(api, "/api/v1/actions", body)
    again = post(api, "/api/v1/actions", body)

    assert (first.status_code, again.status_code) == (201, 200), first.json()
    result = first.json()
    assert set(result) == RESULT_FIELDS
    assert (result["kind"], result["amount"], result["points"]) == ("action", None, 200)
    assert result["summary"]["lifetime"] == 200  # write-a-review counts toward the tier
    assert again.json() == result
    assert Transaction.objects.filter(external_id=body["external_id"]).count() == 1


def test_an_action_with_the_id_of_another_is_a_409(api, member, make_member):
    body = action(member)
    post(api, "/api/v1/actions", body)
    other = make_member()
    state = ledger_state()

    response = post(api, "/api/v1/actions", {**body, "member": other.external_id})

    assert_problem(response, 409, fields={"external_id"})
    assert ledger_state() == state


@pytest.mark.parametrize("handle", ["Write-A-Review", "WRITE-A-REVIEW"])
def test_an_action_named_by_its_handle_in_another_case_earns_its_points(api, member, handle):
    """An app sends the handle as a person typed it ("Write-A-Review" for write-a-review):
    handles are unique whatever their case, so it names that action; sent again in the
    handle's own case, it is the same action, answered 200 with the first answer."""
    # given
    body = action(member, definition=handle)

    # when
    first = post(api, "/api/v1/actions", body)
    again = post(api, "/api/v1/actions", {**body, "definition": "write-a-review"})

    # then
    assert (first.status_code, again.status_code) == (201, 200), first.json()
    assert (first.json()["points"], first.json()["summary"]["lifetime"]) == (200, 200)
    assert again.json() == first.json()
    txn = Transaction.objects.get(external_id=body["external_id"])
    assert txn.definition.handle == "write-a-review"


@pytest.mark.parametrize("handle", ["no-such-action", "purchase-points", "tier-up-bonus"])
def test_an_unknown_action_definition_is_a_404_and_records_nothing(api, member, handle):
    state = ledger_state()

    response = post(api, "/api/v1/actions", action(member, definition=handle))

    assert_problem(response, 404)
    assert ledger_state() == state


def test_an_inactive_action_is_a_422_but_a_repeat_still_answers_200(api, member):
    # given an action recorded, then its definition retired
    done = action(member)
    first = post(api, "/api/v1/actions", done)
    PointDefinition.objects.filter(handle="write-a-review").update(is_active=False)
    state = ledger_state()

    # when
    again = post(api, "/api/v1/actions", done)
    new = post(api, "/api/v1/actions", action(member))

    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert_problem(new, 422, fields={"definition"})
    assert ledger_state() == state


@pytest.mark.parametrize(
    "replace, field",
    [
        ({"definition": None}, "definition"),
        ({"occurred_at": "2026-11-01T10:00:00"}, "occurred_at"),
        ({"amount": "10.00"}, "amount"),
    ],
)
def test_an_action_wrong_on_its_own_is_a_400_naming_the_field(api, member, replace, field):
    body = {k: v for k, v in {**action(member), **replace}.items() if v is not None}

    response = post(api, "/api/v1/actions", body)

    assert_problem(response, 400, fields={field})
    assert not Transaction.objects.exists()


def test_an_action_through_a_key_with_a_store_is_recorded_at_the_key_s_store(api, member):
    # given: the till's key (channel pos, store STORE-12)
    body = {
        "external_id": new_id("A"),
        "member": member.external_id,
        "definition": "write-a-review",
        "occurred_at": recently(),
    }

    # when
    response = post(api, "/api/v1/actions", body)

    # then
    assert response.status_code == 201, response.json()
    assert (response.json()["channel"], response.json()["store"]) == ("pos", "STORE-12")
    assert Transaction.objects.get(external_id=body["external_id"]).store == "STORE-12"
