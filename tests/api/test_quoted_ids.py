"""An id that starts as an export writes a cell a spreadsheet would run ("'+T-1") is
refused at every door: a file reads that quote away, so the API's "'+T-1" and a file's
would be two ids, a purchase paid twice (found by an audit)."""

import io

import pytest

from members.models import Member
from points.models import Transaction
from points.resources import read_transactions
from points.services import import_transactions
from tests.api.conftest import client_for, post
from tests.points.transaction_files import HEADER

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(till, tiers, no_campaigns):
    return client_for(till.secret)


@pytest.mark.parametrize("external_id", ["'-T-1001", "'+T-1", "'=T", "'@T"])
def test_a_purchase_id_that_starts_with_a_quote_before_a_sign_is_refused_naming_it(
    api, external_id
):
    assert post(api, "/api/v1/members", {"external_id": "M-1", "email": "a@example.com"})
    body = {"external_id": external_id, "member": "M-1", "kind": "purchase", "amount": "10.00"}
    body["occurred_at"] = "2026-03-01T10:00:00+01:00"

    answer = post(api, "/api/v1/transactions", body)

    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["field"] == "external_id" and "cannot start with a quote" in error["message"]
    assert not Transaction.objects.exists()


def test_a_customer_code_that_starts_with_a_quote_before_a_sign_is_refused(api):
    answer = post(api, "/api/v1/members", {"external_id": "'+M-1", "email": "a@example.com"})

    assert answer.status_code == 400
    assert "cannot start with a quote" in answer.json()["errors"][0]["message"]
    assert not Member.objects.exists()


def test_a_file_s_quoted_id_is_the_id_the_till_sent(api):
    # given a till's purchase "+T-1001" through the API
    assert post(api, "/api/v1/members", {"external_id": "M-1", "email": "a@example.com"})
    body = {"external_id": "+T-1001", "member": "M-1", "kind": "purchase", "amount": "10.00"}
    assert post(api, "/api/v1/transactions", body | {"occurred_at": "2026-03-01T10:00:00+01:00"})

    # when the night file, saved from a spreadsheet, names it "'+T-1001"
    sent = Transaction.objects.get()
    text = HEADER + (
        f"'+T-1001,M-1,purchase,10.00,2026-03-01T10:00:00+01:00,{sent.channel},{sent.store},\n"
    )
    rows, errors = read_transactions(io.BytesIO(text.encode()))
    report = import_transactions(rows, errors=errors)

    # then it is the same purchase
    assert (report.new, report.skipped, list(report.errors)) == (0, 1, [])
    assert Transaction.objects.count() == 1
