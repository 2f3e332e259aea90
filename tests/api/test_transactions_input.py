"""A transaction's body as the API reads it: amounts read exactly; every input that
is wrong on its own a 400 (or 405, 415) problem naming the field, nothing written."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from points.models import Transaction
from tests.api.conftest import assert_problem, post, recently
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db


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
