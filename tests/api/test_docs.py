"""The schema and its documentation (DESIGN.md, Integration API): served by the
application itself without a key, the docs page from the app's own static files."""

import re

import pytest
from django.test import Client
from openapi_spec_validator import validate

from points.models import LedgerEntry
from tests.api.conftest import assert_problem, client_for

pytestmark = pytest.mark.django_db


def test_the_schema_answers_without_a_key_and_describes_every_resource(db):
    response = client_for(None).get(
        "/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/members",
        "/api/v1/members/{code}",
        "/api/v1/members/{code}/ledger",
        "/api/v1/members/{code}/rewards",
        "/api/v1/transactions",
        "/api/v1/actions",
        "/api/v1/redemptions",
        "/api/v1/redemptions/{id}/cancel",
        "/api/v1/vouchers/{code}",
        "/api/v1/vouchers/{code}/use",
    }
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"


def test_the_schema_is_valid_openapi_as_client_generators_check_it(db):
    """openapi-generator and others validate a schema before they generate a client: a
    default its own property refuses (a required id defaulting to "") fails them."""
    response = client_for(None).get(
        "/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )

    validate(response.json())  # raises, naming the part that is wrong


def test_the_docs_page_answers_without_a_key_and_loads_nothing_from_another_host(db):
    response = Client().get("/api/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    # every script, style sheet and icon is one of the app's own static files, or the
    # page's own script (a file, not inline: the Content-Security-Policy runs no other)
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert sources, html
    assert "/api/v1/docs/?script=" in sources
    assert all(s.startswith("/static/") or s == "/api/v1/docs/?script=" for s in sources), sources
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr|cdnjs", html, re.IGNORECASE)
    # and they are served
    for source in sources:
        assert Client().get(source).status_code == 200, source
    script = Client().get("/api/v1/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()


def test_request_bodies_are_named_once_request_in_the_schema(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    names = set(schema["components"]["schemas"])
    assert {"TransactionRequest", "ActionRequest", "RedemptionRequest"} <= names
    assert not [name for name in names if name.endswith("RequestRequest")]


def test_the_schema_says_a_new_customer_code_has_no_slash(client):
    # as the enrolment refuses it (members.models.addressable_code)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    code = schema["components"]["schemas"]["EnrolmentRequest"]["properties"]["external_id"]
    assert re.fullmatch(code["pattern"], "M-00001")
    assert not re.search(code["pattern"], "upload/") and not re.search(code["pattern"], " ")


def test_the_schema_says_every_ledger_field_is_always_there_and_which_kinds_there_are(client):
    # A client generated from the schema reads an entry's definition and transaction
    # as always given (null when there is none), and knows every kind it may meet.
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    entry = schema["components"]["schemas"]["LedgerEntryOut"]
    assert set(entry["required"]) == set(entry["properties"])
    assert entry["properties"]["definition"]["type"] == ["string", "null"]
    assert entry["properties"]["transaction"]["type"] == ["string", "null"]
    kinds = schema["components"]["schemas"][entry["properties"]["kind"]["$ref"].split("/")[-1]]
    assert set(kinds["enum"]) == set(LedgerEntry.Kind.values)


def test_the_schema_declares_retry_after_on_every_429(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    throttled = [
        (path, method, operation["responses"]["429"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]
    assert len(throttled) == 10  # every operation
    for path, method, response in throttled:
        header = response.get("headers", {}).get("Retry-After")
        assert header and header["schema"]["type"] == "integer", (path, method)


def test_the_schema_says_a_ledger_page_always_has_its_links_with_an_example_of_this_api(client):
    # next and previous are always in the page (null at either end), as the contract's
    # "`next` link" is followed; the examples are links of this list
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    page = schema["components"]["schemas"]["PaginatedLedgerEntryOutList"]
    assert set(page["required"]) == {"next", "previous", "results"}
    for link in ("next", "previous"):
        example = page["properties"][link]["example"]
        assert re.fullmatch(
            r"https://[a-z.]+/api/v1/members/M-00001/ledger\?cursor=[\w%]+", example
        )


# A method a path does not take: 405, a problem like every error (RFC 9457), with the
# methods it does take in Allow; on the schema and its docs too, which answer YAML and
# HTML when all is well.


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("post", "/api/v1/schema/", "GET, HEAD, OPTIONS"),
        ("delete", "/api/v1/docs/", "GET, HEAD"),  # a page: tests/api/test_contract_inputs.py
        ("put", "/api/v1/members/M-1", "GET, HEAD, OPTIONS"),
        ("get", "/api/v1/transactions", "POST, OPTIONS"),
        ("patch", "/api/v1/vouchers/HK7M2PXC9RTA4WNE/use", "POST, OPTIONS"),
    ],
)
def test_a_method_a_path_does_not_take_is_a_405_problem_naming_those_it_does(
    till, method, path, allowed
):
    # when
    response = getattr(client_for(till.secret), method)(path)

    # then
    body = assert_problem(response, 405)
    assert body["title"] == "Method not allowed"
    assert body["detail"] == f'Method "{method.upper()}" not allowed.'
    assert response["Allow"] == allowed


def test_the_schema_asked_for_in_a_form_it_has_not_is_a_406_problem(db):
    # when
    response = client_for(None).get("/api/v1/schema/", HTTP_ACCEPT="text/csv")

    # then
    body = assert_problem(response, 406)
    assert body["title"] == "Not acceptable"


def test_the_schema_says_what_a_method_a_path_does_not_take_answers(client):
    # (OpenAPI describes the operations a path has; a 405 belongs to none of them)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    description = schema.json()["info"]["description"]

    assert "405" in description and "`Allow`" in description


def test_the_schema_says_an_enrolment_repeated_answers_the_member_as_they_are_now(client):
    """Found by a review: it said "its first answer again", as a transaction's repeat."""
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    repeat = schema["paths"]["/api/v1/members"]["post"]["responses"]["200"]["description"]
    assert "as GET /members/{code} shows them now" in repeat
