"""The API's contract at its edges (found by an audit): huge numbers, lone surrogates,
too many query parameters, ?format=, codes the API could not name, tampered cursors,
and enrolments attributed to their key: a problem+json answer, never a 500."""

# ruff: noqa: F811 - the API fixtures are imported from tests/api/conftest.py

from urllib.parse import urlencode

import pytest

from loyalty_site.demo import load_welcome
from members.models import Member, TierChange
from points.models import LedgerEntry, Transaction
from tests.api.conftest import (  # noqa: F401 - fixtures
    PROBLEM,
    api,
    assert_problem,
    post,
    rate_window,
    recently,
    till,
)

pytestmark = pytest.mark.django_db


def purchase_body(code, amount_json: str) -> str:
    """A purchase body written by hand, so that an amount stays the JSON number typed."""
    return (
        f'{{"external_id": "AUD6-P-1", "member": "{code}", "kind": "purchase", '
        f'"amount": {amount_json}, "occurred_at": "{recently()}"}}'
    )


# 1. A JSON number whose exponent is beyond what a Decimal holds: 500 instead of 400.


@pytest.mark.parametrize("number", ["1e100000000000000000000", "1e-100000000000000000000"])
def test_a_json_number_with_a_huge_exponent_is_a_400_problem_not_a_500(api, member, number):
    response = post(api, "/api/v1/transactions", purchase_body(member.external_id, number))

    assert_problem(response, 400)
    assert Transaction.objects.count() == 0


def test_a_huge_exponent_anywhere_in_any_body_is_a_400_problem_not_a_500(api, tiers):
    body = '{"external_id": "AUD6-M-1", "email": "a@example.com", "x": 1e99999999999999999999}'

    assert_problem(post(api, "/api/v1/members", body), 400)


# 2. An enrolment through a key: its welcome points and its "joined" tier change name
# no one, though every ledger entry and tier change made through a key names it.


def test_an_enrolment_through_a_key_attributes_its_welcome_points_and_tier_change_to_the_key(
    api, till, tiers
):
    load_welcome()  # the demo's 50 points on enrolment

    response = post(api, "/api/v1/members", {"external_id": "AUD6-W-1", "email": "w@example.com"})

    assert response.status_code == 201, response.content
    member = Member.objects.get(external_id="AUD6-W-1")
    welcome = LedgerEntry.objects.filter(member=member)
    assert welcome.count() == 1
    assert {entry.created_by_id for entry in welcome} == {till.user_id}
    joined = TierChange.objects.filter(member=member)
    assert {change.created_by_id for change in joined} == {till.user_id}


# 3. More than DATA_UPLOAD_MAX_NUMBER_FIELDS query parameters: Django's HTML 400 page,
# not a problem.


@pytest.mark.parametrize("suffix", ["", "/ledger", "/rewards"])
def test_too_many_query_parameters_is_a_400_problem_not_an_html_page(api, member, suffix):
    query = "&".join(f"p{i}=1" for i in range(1001))

    response = api.get(f"/api/v1/members/{member.external_id}{suffix}?{query}")

    assert_problem(response, 400)


def test_too_many_query_parameters_on_a_write_is_a_400_problem_not_an_html_page(api, member):
    query = "&".join(f"p{i}=1" for i in range(1001))

    response = post(api, f"/api/v1/transactions?{query}", {})

    assert_problem(response, 400)


def test_a_host_not_this_application_s_is_a_400_problem_not_an_html_page(api, member, client):
    """A Host header that is not in ALLOWED_HOSTS is refused by Django before any view:
    under /api/ as a problem like every API error (security audit), elsewhere Django's
    page."""
    answered = api.get(f"/api/v1/members/{member.external_id}", HTTP_HOST="evil.example")

    assert_problem(
        answered, 400, fields=[None], detail="The Host header names no host of this application."
    )
    admin = client.get("/admin/", HTTP_HOST="evil.example")
    assert admin.status_code == 400 and admin["Content-Type"].startswith("text/html")


# 4. `?format=` (DRF's URL format override, not in the contract nor the schema): a known
# member answers 404 "Not found.", though 404 means an unknown member.


@pytest.mark.parametrize("fmt", ["xml", "api", "csv"])
def test_a_format_query_parameter_does_not_make_a_known_member_a_404(api, member, fmt):
    response = api.get(f"/api/v1/members/{member.external_id}?format={fmt}")

    assert response.status_code != 404, response.content
    assert response.status_code in (200, 400, 406), response.content


# 5. A customer code the API cannot name: "." and ".." are dot-segments that every URL
# client (browsers' fetch, urllib3/requests, curl) removes from /api/v1/members/{code},
# as "/" is refused for the same reason (members.models.addressable_code).


# A zero-width space would make a look-alike of a code (docs/rules.md, "Customer codes").
@pytest.mark.parametrize("code", [".", "..", "M-1\u200b"])
def test_an_enrolment_with_a_dot_segment_code_is_refused_as_not_addressable(api, tiers, code):
    response = post(api, "/api/v1/members", {"external_id": code, "email": "dot@example.com"})

    assert_problem(response, 400, fields={"external_id"})
    assert not Member.objects.filter(external_id=code).exists()


# 6. A tampered ledger cursor that base64 drops to nothing silently reads the first page
# (LedgerPage promises a 400 naming `cursor` for any cursor the API did not give).


@pytest.mark.parametrize("cursor", ["%%%", "!!!!", "\x00", "~~~~~~~~"])
def test_a_cursor_that_decodes_to_nothing_is_a_400_naming_it(api, member, cursor):
    response = api.get(
        f"/api/v1/members/{member.external_id}/ledger?{urlencode({'cursor': cursor})}"
    )

    assert_problem(response, 400, fields={"cursor"})


# 7. An error message that repeats a lone surrogate the body gave (JSON "\ud800": valid
# JSON, not encodable as UTF-8): the JSON renderer (UNICODE_JSON) cannot encode the
# problem and the request ends in a 500.


@pytest.mark.parametrize(
    "extra",
    [
        '"kind": "\\ud800"',  # "\"\ud800\" is not a valid choice."
        '"kind": "purchase", "\\ud800": 1',  # {"field": "\ud800", "message": "Unknown field."}
    ],
    ids=["kind-choice", "unknown-field-name"],
)
def test_a_lone_surrogate_echoed_in_an_error_is_a_400_problem_not_a_500(api, member, extra):
    body = (
        f'{{"external_id": "AUD6-S-1", "member": "{member.external_id}", "amount": "1.00", '
        f'"occurred_at": "{recently()}", {extra}}}'
    )

    response = post(api, "/api/v1/transactions", body)

    assert_problem(response, 400)
    assert Transaction.objects.count() == 0


# A 404 caused by a field of the body (an unknown member, reward or definition) names
# that field, in words (not "No PointDefinition matches the given query."): a till can
# tell which id was unknown.


def test_an_unknown_definition_in_a_body_is_a_404_naming_the_field(api, member):
    body = {
        "external_id": "AUD6-A-1",
        "member": member.external_id,
        "definition": "no-such-action",
        "occurred_at": recently(),
    }

    problem = assert_problem(post(api, "/api/v1/actions", body), 404, fields={"definition"})
    assert "PointDefinition" not in problem["detail"]


def test_an_unknown_reward_in_a_body_is_a_404_naming_the_field(api, member):
    body = {"external_id": "AUD6-R-1", "member": member.external_id, "reward": 999999}

    assert_problem(post(api, "/api/v1/redemptions", body), 404, fields={"reward"})


def test_an_unknown_member_in_a_body_is_a_404_naming_the_field(api, tiers):
    body = {
        "external_id": "AUD6-P-2",
        "member": "M-NOBODY",
        "kind": "purchase",
        "amount": "10.00",
        "occurred_at": recently(),
    }

    assert_problem(post(api, "/api/v1/transactions", body), 404, fields={"member"})
