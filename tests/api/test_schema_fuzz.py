"""The API against its own schema, by a tool that knows nothing else about it
(schemathesis): every operation of /api/v1/schema/, through the WSGI app, with a valid
key. Generated requests, valid and invalid (malformed bodies, wrong types, unknown
fields, naive times, unknown members, methods the path does not take), never get a 5xx
or an answer the schema does not describe; a refused request writes nothing.

case.call_and_validate() runs every check schemathesis has: no server error, status
code, content type, headers and body as the schema says, invalid data refused, valid
data accepted, the key enforced, other methods 405. The schema is loaded once, at
import, from the app (schemathesis.pytest.from_fixture does not run under pytest 9.2:
it sets the removed Node._nodeid), one test per operation."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
import schemathesis
from django.conf import settings
from django.core import signals
from django.core.exceptions import ValidationError
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import override_settings
from django.utils.dateparse import parse_datetime
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import PositiveDataAcceptanceConfig
from werkzeug.test import Client

from api.services import create_api_key
from members.models import Member
from members.services import enroll_member
from points.models import LedgerEntry, Transaction
from points.services import record_purchase
from points.services.rules import check_occurred_at, transaction_limits
from rewards.models import Redemption, Reward
from rewards.services import redeem
from tests.conftest import MADRID, at

# Bounded: at most this many generated cases per operation in the fuzzing phase (the
# coverage phase adds its own boundary cases and other methods), the same ones on every
# run (derandomized).
MAX_EXAMPLES = 100
MEMBER_CODES = ["M-FUZZ-1", "M-FUZZ-2", "M-FUZZ-3"]
PROBLEM = "application/problem+json"

APP = WSGIHandler()  # Django's WSGI app, as a server runs it
SCHEMA_URL = "/api/v1/schema/"
HOST = "localhost"  # what schemathesis's WSGI client sends

with override_settings(ALLOWED_HOSTS=[HOST], SECURE_SSL_REDIRECT=False):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, APP)
# A valid request may be refused by a rule that needs the database (not enough points,
# a return above what is left): 422, as the contract says.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*PositiveDataAcceptanceConfig().expected_statuses, "422"]
)


@pytest.fixture
def served(settings, monkeypatch):
    """APP inside the test's transaction: the request signals no longer close the
    connection (Django's test client does the same), and the key's rate does not cut
    the run short."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, HOST]
    settings.SECURE_SSL_REDIRECT = False
    settings.API_RATE = "1000000/min"
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def key(db):
    _, secret = create_api_key(name="Schemathesis", channel="pos")
    return {"Authorization": f"Api-Key {secret}"}


@pytest.fixture
def real(tiers, catalogue):
    """Real rows for the generated requests to name: members (one with points), the
    catalogue, a redemption, an action."""
    members = [
        enroll_member(external_id=code, email=f"{code.lower()}@example.com")
        for code in MEMBER_CODES
    ]
    record_purchase(
        member=members[0], amount=5000, occurred_at=at("2026-03-02"), external_id="P-FUZZ-1"
    )
    cheapest = min(catalogue.values(), key=lambda reward: reward.points_cost)
    redemption = redeem(member=members[0], reward=cheapest, external_id="R-FUZZ-1")
    vouchers = [redeem(member=members[0], reward=cheapest) for _ in range(3)]
    return {
        "member": MEMBER_CODES,
        "code": MEMBER_CODES,
        "referred_by": MEMBER_CODES,
        "reward": list(Reward.objects.values_list("pk", flat=True)),
        "id": [redemption.pk],
        "definition": ["write-a-review"],
        # /vouchers/{code}: a voucher's code, as stored or as a person types it
        "voucher": [
            redemption.code,
            *(voucher.code for voucher in vouchers[:2]),
            vouchers[2].shown_code.lower(),
        ],
    }


def written():
    """What a refused request must leave as it was."""
    return (
        Member.objects.count(),
        Transaction.objects.count(),
        LedgerEntry.objects.count(),
        Redemption.objects.filter(status=Redemption.Status.CANCELLED).count(),
        Redemption.objects.count(),
        Redemption.objects.filter(used_at__isnull=False).count(),
    )


def valid_beyond_the_schema(case, real):
    """What makes a request valid that a schema cannot say: it names rows that exist
    (three times in four: the rest are 404s), its time lies in the programme's
    window (PROGRAMME_START to a day ahead), a birth date has passed, text has no NUL
    character, its amount is at most MAX_TRANSACTION_AMOUNT, and a cursor is one the
    API gave (here: none, the first page). Choices are drawn from the case itself, so
    they are the same on every run."""
    pick = random.Random(repr((case.method, case.path, case.path_parameters, case.body)))
    body = case.body if isinstance(case.body, dict) else {}
    for name, values in real.items():
        for part in (case.path_parameters or {}, body):
            if name in part and pick.random() < 0.75:
                part[name] = pick.choice(values)
    if case.path.startswith("/api/v1/vouchers/") and pick.random() < 0.75:
        case.path_parameters["code"] = pick.choice(real["voucher"])
    if isinstance(body.get("occurred_at"), str) and not in_window(body["occurred_at"]):
        earliest, latest = transaction_limits()[1:]
        moment = earliest + (latest - earliest - timedelta(days=1)) * pick.random()
        body["occurred_at"] = moment.astimezone(MADRID).isoformat()
    for name, value in body.items():  # text holds no NUL character (a 400 says so)
        if isinstance(value, str):
            body[name] = value.replace("\x00", "")
    born = body.get("birth_date")
    if isinstance(born, str) and not "1900" <= born <= "2000":  # between 1900 and today
        body["birth_date"] = f"19{pick.randint(30, 99)}-0{pick.randint(1, 9)}-1{pick.randint(0, 9)}"
    amount = body.get("amount")
    if amount is not None and Decimal(str(amount)) > settings.MAX_TRANSACTION_AMOUNT:
        body["amount"] = f"{pick.randint(1, 10_000_00) / 100:.2f}"
    if case.query:
        case.query.pop("cursor", None)


def in_window(text: str) -> bool:
    try:
        moment = parse_datetime(text)  # as DRF reads it
        check_occurred_at(moment)
    except (ValueError, TypeError, ValidationError):
        return False
    return moment is not None


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case, served, key, real):
    # given: a valid request mostly names real members, rewards and redemptions
    if case.meta.generation.mode.is_positive:
        valid_beyond_the_schema(case, real)
    before = written()

    # when
    response = case.call_and_validate(headers=key)

    # then: a refused request wrote nothing, and a refused object names its fields
    if response.status_code >= 400:
        assert written() == before, f"{response.status_code} but something was written"
    if response.status_code == 400 and isinstance(case.body, dict):
        assert any(error["field"] for error in response.json()["errors"]), response.json()


# Bodies too large. DRF reads a JSON body through request.body, where Django's own limit
# (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) applies first; then the parser's,
# API_MAX_BODY_BYTES. Both answer a problem naming the API's limit, the one a client
# keeps to (tests/api/test_transactions_input.py has the parser's).


@pytest.mark.parametrize("path", ["members", "transactions", "actions", "redemptions"])
def test_a_body_over_djangos_own_limit_is_a_400_problem_and_writes_nothing(path, served, key, real):
    # given: a JSON body larger than both limits, as a server hands it to the app
    body = f'{{"external_id": "{"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}"}}'
    before = written()

    # when
    response = Client(APP).post(
        f"/api/v1/{path}", data=body, content_type="application/json", headers=key
    )

    # then
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == PROBLEM
    assert response.json["detail"] == (
        f"The body is larger than {settings.API_MAX_BODY_BYTES:,} bytes."
    )
    assert response.json["errors"] == [{"field": None, "message": response.json["detail"]}]
    assert written() == before
