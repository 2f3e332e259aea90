"""A fault of ours under /api/ is a problem+json 500, as every API error is (found by an
upgrade audit: a till read Django's HTML "Server Error (500)" page); elsewhere Django's
page."""

import pytest
from django.test import Client

from api.views.members import MemberDetail
from tests.api.conftest import PROBLEM

pytestmark = pytest.mark.django_db


def test_a_server_fault_under_the_api_is_a_problem_500(till, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr(MemberDetail, "get", broken)
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/members/M-1", HTTP_AUTHORIZATION=f"Api-Key {till.secret}")

    assert response.status_code == 500
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["title"]) == (500, "Server error")
    assert "a fault of ours" not in response.content.decode()
