"""The API as a till sees it: keys, a client per key, and what a client checks in every
answer (problem+json) and in the database (nothing written on an error)."""

import json
from datetime import timedelta
from itertools import count
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.services import create_api_key
from tests.api.receiver import start_receiver

PROBLEM = "application/problem+json"
_ids = count(1)


@pytest.fixture(autouse=True)
def rate_window(monkeypatch):
    """A key's rate is counted per window of its period: with the clock of the counting
    held still, no test sees its window end halfway through."""
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: 1.8e9))


def new_id(prefix="API") -> str:
    return f"{prefix}-{next(_ids):05d}"


def client_for(secret: str | None) -> APIClient:
    """A client of its own (a till): its key on every request."""
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


def post(client, path, body, **extra):
    """POST a JSON body as it is written (numbers stay numbers, text stays text)."""
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, raw, content_type="application/json", **extra)


def recently(days=1) -> str:
    """A time with its offset, a little before now: inside what a transaction may be."""
    return timezone.localtime(timezone.now() - timedelta(days=days)).isoformat()


def assert_problem(response, status, *, fields=None, detail=None) -> dict:
    """An RFC 9457 problem of this status; `fields` lists the fields its errors name."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    if detail is not None:
        assert body["detail"] == detail, body
    if fields is not None:
        assert isinstance(body["errors"], list) and body["errors"], body
        assert all(set(error) == {"field", "message"} for error in body["errors"]), body
        assert all(error["message"] for error in body["errors"]), body
        assert {error["field"] for error in body["errors"]} == set(fields), body
    return body


@pytest.fixture
def till(db):
    """A point of sale's key, with its store."""
    key, secret = create_api_key(name="Till 12", channel="pos", store="STORE-12")
    key.secret = secret
    return key


@pytest.fixture
def shop(db):
    """A web shop's key, with no store: each request names its own."""
    key, secret = create_api_key(name="Web shop", channel="ecommerce")
    key.secret = secret
    return key


@pytest.fixture
def api(till):
    return client_for(till.secret)


@pytest.fixture
def purchase(make_member):
    """A purchase body for a new member (or the one given), with fresh ids."""

    def purchase(member=None, amount="100.00", **fields):
        member = member or make_member()
        return {
            "external_id": new_id("P"),
            "member": member.external_id,
            "kind": "purchase",
            "amount": amount,
            "occurred_at": recently(),
            **fields,
        }

    return purchase


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 (tests/api/receiver.py), answering 200 unless told."""
    receiver, server = start_receiver()
    yield receiver
    server.shutdown()
