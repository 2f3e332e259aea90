"""What a till or web shop integrator found before going live (an audit against a running
server): a body sent in chunks read as empty, a field given twice taken at its last
value, a voucher use's repeat that was not its first answer, the schema's JSON not
given for ?format=json, an unknown referrer a 422 where every unknown member is a 404,
an id sent as 1.0, and RFC 3339's lower-case "t" and "z". Each answers as the contract
says, and a refused request writes nothing."""

import io
import json
from datetime import datetime

import pytest
from django.core import signals
from django.db import close_old_connections

from loyalty_site.wsgi import application
from members.services import merge_members
from points.models import Transaction
from points.services import adjust_points
from rewards.models import Redemption
from rewards.services import redeem
from tests.api.conftest import assert_problem, client_for, new_id, post
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def served():
    """loyalty_site.wsgi.application, as gunicorn calls it, inside the test's transaction
    (the request signals no longer close the connection, as in Django's test client)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    def serve(path: str, body: bytes, secret: str, **headers) -> tuple[int, dict]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.input": io.BytesIO(body),  # gunicorn's: the chunks already decoded
            "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Api-Key {secret}",
            **headers,
        }
        statuses = []
        answer = b"".join(application(environ, lambda status, *_: statuses.append(status)))
        return int(statuses[0].split()[0]), json.loads(answer)

    yield serve
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_a_body_sent_in_chunks_is_read_whole(served, till, member, purchase, settings):
    """A client that streams its body sends no Content-Length: the purchase is still
    recorded, and one over the API's limit still refused as too large."""
    settings.ALLOWED_HOSTS = ["localhost"]
    body = purchase(member=member)
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked"}

    sent = json.dumps(body).encode()
    status, answer = served("/api/v1/transactions", sent, till.secret, **chunked)

    assert (status, answer["points"]) == (201, 100), answer
    assert Transaction.objects.filter(external_id=body["external_id"]).exists()
    before = ledger_state()
    huge = json.dumps({**purchase(member=member), "store": "x" * 70_000}).encode()
    status, answer = served("/api/v1/transactions", huge, till.secret, **chunked)
    assert (status, answer["detail"]) == (400, "The body is larger than 65,536 bytes.")
    assert ledger_state() == before


def test_a_field_given_twice_is_a_400_naming_it_and_nothing_is_recorded(api, member, purchase):
    body = purchase(member=member, amount="10.00")
    text = json.dumps(body).replace('"amount": "10.00"', '"amount": "10.00", "amount": "99.00"')

    response = post(api, "/api/v1/transactions", text)

    problem = assert_problem(response, 400, fields={"amount"})
    assert problem["errors"][0]["message"] == "Given twice in the body: send each field once."
    assert not Transaction.objects.exists()


def test_a_voucher_use_repeated_after_a_merge_answers_its_first_body(
    api, make_member, staff, catalogue
):
    """P8: an exact repeat is 200 with the same body, whatever happened since: the
    voucher was used by M-OLD's card, before M-OLD was merged into M-KEEP."""
    old, keep = make_member("M-OLD"), make_member("M-KEEP")
    adjust_points(member=old, points=1_000, reason="Welcome", by=staff)
    voucher = redeem(member=old, reward=catalogue["5 euro voucher"])
    use = {"external_id": new_id("U")}
    first = post(api, f"/api/v1/vouchers/{voucher.code}/use", use)
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")

    again = post(api, f"/api/v1/vouchers/{voucher.code}/use", use)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["member"] == "M-OLD"
    assert Redemption.objects.get().used_external_id == use["external_id"]


def test_the_schema_is_json_for_format_json_as_generators_ask_for_it(db):
    response = client_for(None).get("/api/v1/schema/?format=json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert response.json()["openapi"].startswith("3.")


def test_a_reward_id_sent_with_a_fraction_is_a_400(api, rich, catalogue):
    reward = catalogue["5 euro voucher"]
    text = json.dumps({"external_id": "R-1", "member": rich.external_id, "reward": 0})
    text = text.replace('"reward": 0', f'"reward": {reward.pk}.5')

    response = post(api, "/api/v1/redemptions", text)

    problem = assert_problem(response, 400, fields={"reward"})
    assert problem["errors"][0]["message"] == "Give a whole number, without a fraction."
    assert not Redemption.objects.exists()


def test_a_reward_id_written_with_a_point_zero_is_that_whole_number(api, rich, catalogue):
    # 7.0 is an integer to JSON Schema (the schema is OpenAPI 3.1), as to a JavaScript till
    reward = catalogue["5 euro voucher"]
    text = json.dumps({"external_id": "R-1", "member": rich.external_id, "reward": 0})
    text = text.replace('"reward": 0', f'"reward": {reward.pk}.0')

    response = post(api, "/api/v1/redemptions", text)

    assert response.status_code == 201, response.content
    assert Redemption.objects.get().reward == reward


def test_a_time_with_rfc_3339_lower_case_t_and_z_is_read(api, member, purchase):
    body = purchase(member=member)
    written = body["occurred_at"][:19]  # 2026-12-05T10:00:00, then in UTC
    body["occurred_at"] = written.replace("T", "t") + "z"

    response = post(api, "/api/v1/transactions", body)

    assert response.status_code == 201, response.json()
    recorded = Transaction.objects.get(external_id=body["external_id"]).occurred_at
    assert recorded == datetime.fromisoformat(written + "+00:00")
