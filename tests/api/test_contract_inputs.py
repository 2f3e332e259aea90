"""The API's contract for input that is wrong on its own (found by an audit against a
running server): ids with an invisible character, times in digits of another script or
with a NUL, offsets with seconds, amounts sent as numbers with trailing zeros, an Accept
header without a key, OPTIONS on the docs page. Each is a problem+json answer as the
contract says, and a refused request writes nothing."""

# ruff: noqa: F811 - the API fixtures are imported from tests/api/conftest.py

import json

import pytest
from django.core.exceptions import ValidationError

from points.models import Transaction
from rewards.models import Redemption
from rewards.services import redeem, use_voucher
from tests.api.conftest import (  # noqa: F401 - fixtures
    PROBLEM,
    api,
    assert_problem,
    client_for,
    new_id,
    post,
    purchase,
    recently,
    till,
)
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db

HIDDEN = ["\u200b", "\u00ad", "\ufeff", "\t"]  # zero width space, soft hyphen, BOM, tab


# 1. A redemption's id with an invisible character looked like one already made, and was
# made again: the points spent twice (P8, docs/rules.md "Customer codes").


@pytest.mark.parametrize("hidden", HIDDEN)
def test_P8_a_redemption_id_with_an_invisible_character_is_a_400_and_spends_nothing(
    api, rich, catalogue, hidden
):
    # given: a redemption made
    body = {"external_id": "R-LOOK-1", "member": rich.external_id}
    body["reward"] = catalogue["Coffee voucher"].pk
    assert post(api, "/api/v1/redemptions", body).status_code == 201
    before = ledger_state(), Redemption.objects.count()

    # when: the same id again, with an invisible character in it
    response = post(api, "/api/v1/redemptions", {**body, "external_id": f"R-LOOK{hidden}-1"})

    # then
    problem = assert_problem(response, 400, fields={"external_id"})
    assert "invisible character" in problem["errors"][0]["message"]
    assert (ledger_state(), Redemption.objects.count()) == before


def test_P8_a_voucher_use_id_with_an_invisible_character_is_a_400_and_leaves_it_valid(
    api, rich, catalogue
):
    voucher = redeem(member=rich, reward=catalogue["5 euro voucher"])

    response = post(api, f"/api/v1/vouchers/{voucher.code}/use", {"external_id": "RCPT\u00ad-1"})

    assert_problem(response, 400, fields={"external_id"})
    assert api.get(f"/api/v1/vouchers/{voucher.code}").json()["status"] == "valid"


@pytest.mark.parametrize("door", ["redeem", "use_voucher"])
def test_P8_the_services_refuse_an_id_with_an_invisible_character_for_every_door(
    rich, catalogue, door
):
    """The CX Manager and the imports call the services, not the API."""
    with pytest.raises(ValidationError) as refused:
        if door == "redeem":
            redeem(member=rich, reward=catalogue["Coffee voucher"], external_id="R-2\u200b")
        else:
            voucher = redeem(member=rich, reward=catalogue["5 euro voucher"])
            use_voucher(code=voucher.code, external_id="RCPT-2\u200b")

    assert "invisible character (U+200B ZERO WIDTH SPACE" in str(refused.value.message_dict)
    assert not Redemption.objects.filter(external_id="R-2\u200b").exists()
    assert not Redemption.objects.filter(used_external_id="RCPT-2\u200b").exists()


# 2. A transaction's or an action's id with one was a 422 (the service's rule): it is
# input wrong on its own, a 400, as it is for an enrolment's customer code.


@pytest.mark.parametrize("path", ["transactions", "actions"])
def test_a_transaction_id_with_an_invisible_character_is_a_400_naming_it(
    api, member, purchase, path
):
    body = purchase(member=member, external_id="T-LOOK\u200b-1")
    if path == "actions":
        body = {k: body[k] for k in ("external_id", "member", "occurred_at")}
        body["definition"] = "write-a-review"
    before = ledger_state()

    response = post(api, f"/api/v1/{path}", body)

    assert_problem(response, 400, fields={"external_id"})
    assert ledger_state() == before


def test_an_id_given_true_is_told_to_be_text_not_a_number(api, member, purchase):
    response = post(api, "/api/v1/transactions", purchase(member=member, external_id=True))

    problem = assert_problem(response, 400, fields={"external_id"})
    assert problem["errors"][0]["message"] == "Give text (a JSON string), not true or false."


# 3. Times: Python's parser takes digits of any script and skips a NUL, and ISO 8601 has
# no seconds in an offset; each was recorded.


@pytest.mark.parametrize(
    "occurred_at, message",
    [
        (
            "\uff12\uff10\uff12\uff16-01-05T10:00:00+01:00",  # full-width digits
            "Give the time in ISO 8601, in plain digits, like 2026-11-01T10:00:00+01:00.",
        ),
        (
            "2026-01-05T10:00:00\u0000+01:00",
            "Give the time in ISO 8601, in plain digits, like 2026-11-01T10:00:00+01:00.",
        ),
        ("2026-01-05T10:00:00+01:00:30", "Give the offset in hours and minutes, like +01:00."),
    ],
)
def test_a_time_not_in_plain_iso_8601_is_a_400_naming_it(
    api, member, purchase, occurred_at, message
):
    before = ledger_state()

    response = post(api, "/api/v1/transactions", purchase(member=member, occurred_at=occurred_at))

    problem = assert_problem(response, 400, fields={"occurred_at"})
    assert problem["errors"][0]["message"] == message
    assert ledger_state() == before


def test_a_time_with_a_whole_minute_offset_is_still_read(api, member, purchase):
    response = post(api, "/api/v1/transactions", purchase(member=member, occurred_at=recently()))

    assert response.status_code == 201, response.json()


# 4. A JSON number is read exactly, as a value: 12.000 is 12, as the schema's multipleOf
# 0.01 says; text is read as written ("12.000" has three decimals, as its pattern says).


def post_amount(client, body, amount_json: str):
    """POST a purchase `body` with its amount written by hand: a JSON number stays as typed."""
    text = json.dumps({**body, "amount": "__AMOUNT__"}).replace('"__AMOUNT__"', amount_json)
    return client.post("/api/v1/transactions", data=text, content_type="application/json")


def test_a_json_number_with_trailing_zeros_is_the_amount_it_is(api, member, purchase):
    body = purchase(member=member)

    response = post_amount(api, body, "12.000")

    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "12.00"
    assert response.json()["points"] == 12
    assert Transaction.objects.get(external_id=body["external_id"]).amount == 12


@pytest.mark.parametrize("amount", ["12.005", '"12.000"'])
def test_an_amount_with_a_third_decimal_of_value_or_written_text_is_a_400(
    api, member, purchase, amount
):
    response = post_amount(api, purchase(member=member), amount)

    problem = assert_problem(response, 400, fields={"amount"})
    assert "more than two decimals" in problem["errors"][0]["message"]
    assert not Transaction.objects.exists()


# 5. Without a key, an Accept header the API cannot answer was a 406: a resource answers
# 401 first (docs/rules.md), as it does for a body it cannot read.


def test_an_accept_the_api_cannot_answer_is_a_401_without_a_key_and_a_406_with_one(api, member):
    path = f"/api/v1/members/{member.external_id}"

    without_key = client_for(None).get(path, HTTP_ACCEPT="application/xml")
    wrong_key = client_for("nope.nope").get(path, HTTP_ACCEPT="application/xml")
    with_key = api.get(path, HTTP_ACCEPT="application/xml")

    assert_problem(without_key, 401)
    assert without_key["WWW-Authenticate"] == "Api-Key"
    assert_problem(wrong_key, 401)
    assert_problem(with_key, 406)


def test_the_schema_needs_no_key_so_an_accept_it_cannot_answer_is_a_406():
    response = client_for(None).get("/api/v1/schema/", HTTP_ACCEPT="image/png")

    assert_problem(response, 406)


# 6. OPTIONS on the docs page was a 500 (DRF described the view through the page's HTML
# renderer, which has no template for it).


def test_options_on_the_docs_page_is_a_405_naming_what_it_takes(client):
    response = client.options("/api/v1/docs/")

    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response["Allow"] == "GET, HEAD"
    assert client.get("/api/v1/docs/").status_code == 200


# 7. Text was measured once trimmed: 65 spaces passed a maxLength of 64. The schema's
# maxLength is of what is sent.


def test_text_is_measured_as_sent_against_the_schema_s_max_length(api, tiers):
    body = {"external_id": "M-LONG-1", "email": "long@example.com", "referred_by": " " * 65}

    response = post(api, "/api/v1/members", body)

    problem = assert_problem(response, 400, fields={"referred_by"})
    assert problem["errors"][0]["message"] == "At most 64 characters, not 65."
    assert api.get("/api/v1/members/M-LONG-1").status_code == 404


# 8. Paths under /api outside /api/v1/: Django's HTML 404, and in DEBUG a 500 for a POST
# to /api/v1 (CommonMiddleware cannot redirect a POST to /api/v1/).


@pytest.mark.parametrize("path", ["/api/v1", "/api", "/api/v2/members/M-1"])
@pytest.mark.parametrize("debug", [False, True])
def test_any_other_path_under_api_is_a_404_problem(api, settings, path, debug):
    settings.DEBUG = debug

    assert_problem(post(api, path, {}), 404)
    assert_problem(api.get(path), 404)
