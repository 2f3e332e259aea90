"""Answers as a strict client reads the schema: a generated client, or a validator such
as openapi-core, refuses a null where the schema does not allow one, and lenient tools
(schemathesis, most generators) would not notice. A member at the top tier with no
expiry has no next tier, no points to it and no next expiry; the first ledger page has
no previous page, and a manual adjustment no transaction."""

import pytest
from openapi_schema_validator import OAS30Validator, OAS31Validator

from members.models import Member
from points.services import adjust_points
from tests.api.conftest import client_for, post

pytestmark = pytest.mark.django_db


def conforms(response, path: str, method: str = "get") -> None:
    """The answer's body, as the schema describes this operation's answer of its status,
    read by the validator of the schema's OpenAPI version (raises, naming what differs)."""
    spec = client_for(None).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    described = spec["paths"][path][method]["responses"][str(response.status_code)]
    schema = described["content"]["application/json"]["schema"]
    strict = OAS31Validator if spec["openapi"].startswith("3.1") else OAS30Validator
    strict({**schema, "components": spec["components"]}).validate(response.json())


def test_a_member_at_the_top_tier_reads_as_the_schema_says_with_its_nulls(api, purchase, staff):
    # given: a purchase that takes a new member to the top tier (Platinum at 8,000), and
    # points an agent assigned
    bought = post(api, "/api/v1/transactions", purchase(amount="9000.00"))
    assert bought.status_code == 201
    code = bought.json()["member"]
    adjust_points(member=Member.objects.get(external_id=code), points=5, reason="Late", by=staff)

    # when
    member = api.get(f"/api/v1/members/{code}")
    ledger = api.get(f"/api/v1/members/{code}/ledger")

    # then
    summary = member.json()
    assert summary["effective_tier"]["code"] == "platinum"
    assert (summary["next_tier"], summary["next_expiry"], summary["points_to_next_tier"]) == (
        None,
        None,
        None,
    )
    assert ledger.json()["previous"] is None
    assert any(entry["transaction"] is None for entry in ledger.json()["results"])  # the adjustment
    conforms(bought, "/api/v1/transactions", "post")
    conforms(member, "/api/v1/members/{code}")
    conforms(ledger, "/api/v1/members/{code}/ledger")
