"""Purchases, returns and actions through the API (DESIGN.md, Integration API; P2, P4,
P8): 201 with the points and the member after it, an exact repeat 200 with the same
body, the same id with other content 409; amounts read exactly; every input that is
wrong on its own a 400 problem naming the field, and nothing written."""

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from points.models import PointDefinition, Transaction
from tests.api.conftest import assert_problem, new_id, post, recently
from tests.conftest import earning_at_the_bounds, ledger_state, summary

pytestmark = pytest.mark.django_db

RESULT_FIELDS = {
    "external_id",
    "member",
    "kind",
    "amount",
    "occurred_at",
    "channel",
    "store",
    "original_external_id",
    "points",
    "summary",
}


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


def test_P8_an_exact_repeat_answers_200_with_the_same_body_and_records_nothing(
    api, member, purchase
):
    body = purchase(member)
    first = post(api, "/api/v1/transactions", body)
    state = ledger_state()

    again = post(api, "/api/v1/transactions", body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ledger_state() == state


def test_P8_a_repeat_after_the_member_changed_answers_the_first_body(api, member, purchase):
    # given a purchase, then another that changes the member's balance
    body = purchase(member)
    first = post(api, "/api/v1/transactions", body)
    post(api, "/api/v1/transactions", purchase(member))

    # when the first is sent again
    again = post(api, "/api/v1/transactions", body)

    # then the answer is the first one, the summary as that purchase left the member
    assert again.status_code == 200
    assert again.json() == first.json()
    assert summary(member)["available"] > first.json()["summary"]["available"]


def test_P8_first_answers_are_kept_for_the_repeat_window_then_repeats_show_the_figures_now(
    api, member, purchase, settings
):
    # given: two purchases recorded, the first 31 days ago by the answers' clock
    from api.models import FirstAnswer
    from api.tasks import prune_first_answers_task

    settings.API_REPEAT_ANSWER_DAYS = 30
    old, recent = purchase(member), purchase(member)
    first = post(api, "/api/v1/transactions", old)
    post(api, "/api/v1/transactions", recent)
    FirstAnswer.objects.filter(external_id=old["external_id"]).update(
        created_at=timezone.now() - timedelta(days=31)
    )

    # when: the daily job runs (twice: the second changes nothing)
    assert prune_first_answers_task() == 1
    assert prune_first_answers_task() == 0

    # then: the recent answer is kept; a repeat of the old one answers 200 with the
    # member as they are now, and records nothing
    assert list(FirstAnswer.objects.values_list("external_id", flat=True)) == [
        recent["external_id"]
    ]
    state = ledger_state()
    again = post(api, "/api/v1/transactions", old)
    assert again.status_code == 200
    assert again.json()["points"] == first.json()["points"]
    assert again.json()["summary"]["available"] == summary(member, now=timezone.now())["available"]
    assert again.json()["summary"] != first.json()["summary"]
    assert ledger_state() == state


def test_P8_the_same_instant_written_with_another_offset_is_the_same_content(api, member, purchase):
    body = purchase(member, occurred_at="2026-11-01T10:00:00+01:00")
    first = post(api, "/api/v1/transactions", body)

    again = post(api, "/api/v1/transactions", {**body, "occurred_at": "2026-11-01T09:00:00Z"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


@pytest.mark.parametrize(
    "other",
    [{"amount": "99.00"}, {"occurred_at": "2026-11-01T10:00:01+01:00"}, {"member": "OTHER"}],
    ids=["amount", "time", "member"],
)
def test_P8_the_same_id_with_other_content_is_a_409_conflict_and_records_nothing(
    api, member, make_member, purchase, other
):
    body = purchase(member, occurred_at="2026-11-01T10:00:00+01:00")
    post(api, "/api/v1/transactions", body)
    if other.get("member"):
        other = {"member": make_member().external_id}  # before the state: enrolling is no write
    state = ledger_state()

    response = post(api, "/api/v1/transactions", {**body, **other})

    problem = assert_problem(response, 409, fields={"external_id"})
    assert body["external_id"] in problem["detail"]
    assert ledger_state() == state


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


# Amounts are read exactly


@pytest.mark.parametrize(
    "written, stored",
    [("120.1", "120.10"), ("0.29", "0.29"), ("99999.99", "99999.99"), ("120", "120.00")],
)
def test_an_amount_given_as_a_json_number_is_read_exactly(api, member, written, stored):
    raw = raw_purchase(member, external_id='"P-NUM"', amount=written)  # a number, not text

    response = post(api, "/api/v1/transactions", raw)

    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == stored
    assert Transaction.objects.get(external_id="P-NUM").amount == Decimal(stored)
    assert str(Transaction.objects.get(external_id="P-NUM").amount) == stored


# Input wrong on its own: 400 naming the field, nothing written


def raw_purchase(buyer, **replace) -> str:
    """A purchase body as text, with fields replaced by raw JSON."""
    fields = {
        "external_id": '"P-BAD"',
        "member": json.dumps(buyer.external_id),
        "kind": '"purchase"',
        "amount": '"10.00"',
        "occurred_at": json.dumps(recently()),
        **replace,
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not None) + "}"


@pytest.mark.parametrize(
    "replace, field",
    [
        ({"external_id": None}, "external_id"),
        ({"member": None}, "member"),
        ({"kind": None}, "kind"),
        ({"amount": None}, "amount"),
        ({"occurred_at": None}, "occurred_at"),
        ({"external_id": "12"}, "external_id"),
        ({"external_id": '""'}, "external_id"),
        ({"external_id": json.dumps("P" * 101)}, "external_id"),
        ({"member": '{"code": "M-1"}'}, "member"),
        ({"member": "7"}, "member"),
        ({"store": "12.5"}, "store"),
        ({"kind": '"refund"'}, "kind"),
        ({"kind": "1"}, "kind"),
        ({"amount": '"0"'}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": '"-10.00"'}, "amount"),
        ({"amount": "-10"}, "amount"),
        ({"amount": '"10.001"'}, "amount"),
        ({"amount": "10.001"}, "amount"),
        ({"amount": '"1e2"'}, "amount"),
        ({"amount": '"NaN"'}, "amount"),
        ({"amount": '"Infinity"'}, "amount"),
        ({"amount": '"10,00"'}, "amount"),
        ({"amount": '" 10"'}, "amount"),
        ({"amount": "true"}, "amount"),
        ({"amount": "[10]"}, "amount"),
        ({"amount": "null"}, "amount"),
        ({"amount": '"100000.01"'}, "amount"),
        ({"amount": "1e400"}, "amount"),
        ({"occurred_at": '"2026-11-01T10:00:00"'}, "occurred_at"),
        ({"occurred_at": '"2026-11-01 10:00"'}, "occurred_at"),
        ({"occurred_at": '"2026-11-1T10:00:00"'}, "occurred_at"),
        ({"occurred_at": '"2026-11-01"'}, "occurred_at"),
        ({"occurred_at": '"yesterday"'}, "occurred_at"),
        ({"occurred_at": "1700000000"}, "occurred_at"),
        ({"occurred_at": '"1999-12-31T10:00:00+01:00"'}, "occurred_at"),
        ({"occurred_at": '"0001-01-01T00:00:00+14:00"'}, "occurred_at"),
        ({"occurred_at": '"9999-12-31T23:59:59-14:00"'}, "occurred_at"),
        ({"store": json.dumps("S" * 51)}, "store"),
        ({"original_external_id": '"P-1"'}, "original_external_id"),
        ({"points": "100"}, "points"),
        ({"channel": '"manual"'}, "channel"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else value,
)
def test_input_wrong_on_its_own_is_a_400_naming_the_field_and_records_nothing(
    api, member, replace, field
):
    state = ledger_state()

    response = post(api, "/api/v1/transactions", raw_purchase(member, **replace))

    assert_problem(response, 400, fields={field})
    assert ledger_state() == state


def test_a_time_more_than_a_day_ahead_is_a_400(api, member):
    ahead = timezone.localtime(timezone.now() + timedelta(days=2)).isoformat()

    response = post(api, "/api/v1/transactions", raw_purchase(member, occurred_at=f'"{ahead}"'))

    assert_problem(response, 400, fields={"occurred_at"})


def test_a_return_must_name_its_purchase(api, member):
    state = ledger_state()

    response = post(api, "/api/v1/transactions", raw_purchase(member, kind='"return"'))

    assert_problem(response, 400, fields={"original_external_id"})
    assert ledger_state() == state


def test_every_wrong_field_is_named_at_once(api, member):
    body = raw_purchase(member, amount='"-1"', kind='"gift"', extra='"x"')

    response = post(api, "/api/v1/transactions", body)

    assert_problem(response, 400, fields={"amount", "kind", "extra"})


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        '{"amount": NaN}',
        '{"amount": Infinity}',
        b"\xff\xfe\x00garbage",
        "",
        "[" * 60_000,
        '{"a":' * 6_000 + "1" + "}" * 6_000,
        '{"amount": 1' + "0" * 5000 + "}",
    ],
    ids=["broken", "nan", "infinity", "not-utf8", "empty", "deep-list", "deep-object", "huge-int"],
)
def test_a_body_that_is_not_a_json_object_is_a_400_problem(api, member, raw):
    state = ledger_state()

    response = post(api, "/api/v1/transactions", raw)

    body = assert_problem(response, 400)
    assert body["errors"], body
    assert ledger_state() == state


@pytest.mark.parametrize("raw", ["[]", "[{}]", '"purchase"', "42", "null", "true"])
def test_a_json_body_that_is_not_an_object_is_a_400_problem(api, member, raw):
    state = ledger_state()

    response = post(api, "/api/v1/transactions", raw)

    assert_problem(response, 400, fields={None})
    assert ledger_state() == state


def test_a_body_over_the_limit_is_a_400_problem_and_records_nothing(api, member):
    state = ledger_state()
    padding = "x" * (settings.API_MAX_BODY_BYTES + 1)

    response = post(api, "/api/v1/transactions", raw_purchase(member, store=json.dumps(padding)))
    huge = post(api, "/api/v1/transactions", " " * (3 * 1024 * 1024) + "{}")

    body = assert_problem(response, 400)
    assert f"{settings.API_MAX_BODY_BYTES:,} bytes" in body["detail"]
    assert_problem(huge, 400)
    assert ledger_state() == state


def test_a_body_that_is_not_json_by_its_content_type_is_a_415_problem(api, member):
    response = api.post("/api/v1/transactions", "amount=10", content_type="text/plain")

    assert_problem(response, 415)


def test_a_method_the_resource_does_not_have_is_a_405_problem(api, tiers):
    assert_problem(api.get("/api/v1/transactions"), 405)
    assert_problem(api.delete("/api/v1/members/M-1"), 405)


# Actions


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


@pytest.mark.parametrize("reused", ["the return's id", "the purchase's id"])
def test_P8_a_return_under_an_id_used_before_naming_another_purchase_is_a_409(
    api, member, purchase, reused
):
    # given a purchase and a return of part of it
    bought = purchase(member)
    assert post(api, "/api/v1/transactions", bought).status_code == 201
    returned = bought | {
        "external_id": new_id("R"),
        "kind": "return",
        "amount": "40.00",
        "original_external_id": bought["external_id"],
    }
    assert post(api, "/api/v1/transactions", returned).status_code == 201
    state = ledger_state()

    # when: an id used before, as a return of a purchase that does not exist
    used = returned["external_id"] if reused == "the return's id" else bought["external_id"]
    response = post(
        api,
        "/api/v1/transactions",
        returned | {"external_id": used, "original_external_id": "NO-SUCH-PURCHASE"},
    )

    # then: the conflict of ids, not the missing purchase
    assert_problem(response, 409, fields={"external_id"})
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
