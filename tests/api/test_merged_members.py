"""A merged account's customer code names the member it was merged into, in every
`{code}` of the API and in the bodies that name a member (DESIGN.md, "Member 360")."""

import json

import pytest

from members.services import merge_members
from points.services import adjust_points
from tests.api.conftest import new_id, post, recently
from tests.conftest import summary

pytestmark = pytest.mark.django_db


@pytest.fixture
def merged(make_member, buy, staff):
    """M-KEEP with the points of M-OLD, merged into it."""
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    buy(keep, "300")
    buy(old, "200", external_id="T-OLD")
    adjust_points(member=old, points=500, reason="Welcome", by=staff)
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")
    return keep, old


def test_the_summary_and_ledger_of_a_merged_code_are_the_survivors(api, merged):
    keep, _ = merged

    for code in ("M-OLD", "M-KEEP"):
        body = api.get(f"/api/v1/members/{code}").json()
        assert body["external_id"] == "M-KEEP" and body["available"] == 1000
        ledger = api.get(f"/api/v1/members/{code}/ledger").json()
        assert {entry["kind"] for entry in ledger["results"]} >= {"merge", "earn"}
        assert api.get(f"/api/v1/members/{code}/rewards").status_code == 200


def test_a_purchase_for_a_merged_code_is_recorded_for_the_survivor(api, merged):
    keep, old = merged

    response = post(
        api,
        "/api/v1/transactions",
        {
            "external_id": new_id("P"),
            "member": "M-OLD",
            "kind": "purchase",
            "amount": "40.00",
            "occurred_at": recently(),
        },
    )

    assert response.status_code == 201, response.content
    body = json.loads(response.content)
    assert body["member"] == "M-KEEP" and body["points"] == 40
    assert summary(keep)["available"] == 1040 and summary(old)["available"] == 0


def test_a_return_of_a_purchase_made_before_the_merge_comes_out_of_the_survivor(api, merged):
    keep, _ = merged

    response = post(
        api,
        "/api/v1/transactions",
        {
            "external_id": new_id("R"),
            "member": "M-OLD",
            "kind": "return",
            "amount": "100.00",
            "occurred_at": recently(),
            "original_external_id": "T-OLD",
        },
    )

    assert response.status_code == 201, response.content
    assert json.loads(response.content)["points"] == -100
    assert summary(keep)["lifetime"] == 400


def test_a_redemption_for_a_merged_code_spends_the_survivors_points(api, merged, catalogue):
    keep, _ = merged

    response = post(
        api,
        "/api/v1/redemptions",
        {"external_id": new_id("X"), "member": "M-OLD", "reward": catalogue["Coffee voucher"].pk},
    )

    assert response.status_code == 201, response.content
    assert summary(keep)["available"] == 1000 - catalogue["Coffee voucher"].points_cost


def test_enrolling_a_merged_code_again_answers_with_the_survivor(api, merged):
    response = post(api, "/api/v1/members", {"external_id": "M-OLD", "email": "m-old@example.com"})

    assert response.status_code == 200, response.content
    assert json.loads(response.content)["external_id"] == "M-KEEP"


@pytest.fixture
def merged_while_looked_up(make_member, staff, monkeypatch):
    """M-OLD merged into M-KEEP just after a request has looked M-OLD up, before it
    writes: as when a merge commits while a till's request runs."""
    import api.views.common as common

    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    look_up = common.member_and_programme

    def looked_up_then_merged(code, **field):
        found = look_up(code, **field)
        if not keep.merged_members.exists():
            merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail")
        return found

    monkeypatch.setattr(common, "member_and_programme", looked_up_then_merged)
    return keep


def test_a_purchase_for_a_code_merged_while_the_request_runs_is_the_survivors(
    api, merged_while_looked_up
):
    body = {
        "external_id": new_id("P"),
        "member": "M-OLD",
        "kind": "purchase",
        "amount": "40.00",
        "occurred_at": recently(),
    }

    response = post(api, "/api/v1/transactions", body)

    assert response.status_code == 201, response.content
    assert response.json()["member"] == "M-KEEP"
    assert summary(merged_while_looked_up)["lifetime"] == 40


def test_a_redemption_for_a_code_merged_while_the_request_runs_is_the_survivors(
    api, merged_while_looked_up, catalogue, staff
):
    adjust_points(member=merged_while_looked_up, points=600, reason="Welcome", by=staff)
    reward = catalogue["5 euro voucher"]
    body = {"external_id": new_id("R"), "member": "M-OLD", "reward": reward.pk}

    response = post(api, "/api/v1/redemptions", body)

    assert response.status_code == 201, response.content
    assert summary(merged_while_looked_up)["available"] == 100


def test_a_redemption_cancelled_after_a_merge_is_in_the_survivors_history(
    api, make_member, staff, catalogue
):
    # given: a coffee redeemed through the API by M-OLD, then M-OLD merged into M-KEEP
    from django.contrib.admin.models import LogEntry

    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=500, reason="Welcome", by=staff)
    made = post(
        api,
        "/api/v1/redemptions",
        {"external_id": new_id("RD"), "member": "M-OLD", "reward": catalogue["Coffee voucher"].pk},
    ).json()
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")

    # when the till cancels it
    cancelled = api.post(f"/api/v1/redemptions/{made['id']}/cancel")

    # then the points went back to M-KEEP, and M-KEEP's history says so, as the member
    # page would have written it
    assert cancelled.status_code == 200, cancelled.content
    assert summary(keep)["available"] == 500
    rows = LogEntry.objects.filter(change_message__startswith="Cancelled the redemption")
    assert [row.object_id for row in rows] == [str(keep.pk)]


def test_a_voucher_redeemed_before_a_merge_names_the_account_the_customer_keeps(
    api, make_member, staff, catalogue
):
    """What the web shop meets: the customer logs in as M-KEEP and types the coffee
    voucher she redeemed on her old account, merged since. GET /vouchers/{code} says
    "member": "M-OLD", a code that everywhere else in the API names M-KEEP; the shop,
    comparing it with the customer logged in, refuses her own voucher. The same for the
    answer to a cancellation, whose points went back to M-KEEP."""
    # given: a coffee redeemed by M-OLD, then M-OLD merged into M-KEEP
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=500, reason="Welcome", by=staff)
    coffee = {"member": "M-OLD", "reward": catalogue["Coffee voucher"].pk}
    made = post(api, "/api/v1/redemptions", {"external_id": new_id("RD"), **coffee}).json()
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")

    # when: the shop checks the voucher, then the till cancels the redemption
    checked = api.get(f"/api/v1/vouchers/{made['code']}").json()
    cancelled = api.post(f"/api/v1/redemptions/{made['id']}/cancel").json()

    # then: both name the account the customer keeps
    assert (checked["member"], cancelled["member"]) == ("M-KEEP", "M-KEEP")
