"""Members through the API (DESIGN.md, Integration API): enrolment, idempotent on the
customer code; the member's summary with every field of the contract; the ledger, newest
first and by cursor; the catalogue with what locks each reward."""

import base64
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from api.views.members import LedgerPage
from members.models import Member, TierChange
from points.models import ExpiryPolicy, LedgerEntry
from points.services import adjust_points
from tests.api.conftest import assert_problem, post
from tests.conftest import summary

pytestmark = pytest.mark.django_db

SUMMARY_FIELDS = {
    "external_id",
    "available",
    "pending",
    "lifetime",
    "qualified_tier",
    "effective_tier",
    "next_tier",
    "points_to_next_tier",
    "degrades_on",
    "next_expiry",
}
BRONZE = {"code": "bronze", "name": "Bronze", "multiplier": "1.00"}
SILVER = {"code": "silver", "name": "Silver", "multiplier": "1.50"}
GOLD = {"code": "gold", "name": "Gold", "multiplier": "2.00"}


def enrolment(**fields):
    return {
        "external_id": "M-API-1",
        "email": "ana@example.com",
        "first_name": "Ana",
        "last_name": "Ruiz",
        **fields,
    }


# POST /api/v1/members


def test_enrolment_answers_201_with_the_member_in_the_entry_tier(api, tiers):
    response = post(api, "/api/v1/members", enrolment())

    assert response.status_code == 201, response.json()
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "external_id": "M-API-1",
        "available": 0,
        "pending": 0,
        "lifetime": 0,
        "qualified_tier": BRONZE,
        "effective_tier": BRONZE,
        "next_tier": SILVER,
        "points_to_next_tier": 1000,
        "degrades_on": None,
        "next_expiry": None,
    }
    member = Member.objects.get(external_id="M-API-1")
    assert (member.email, member.first_name, member.last_name) == ("ana@example.com", "Ana", "Ruiz")
    assert TierChange.objects.filter(member=member, reason="joined").count() == 1


def test_enrolling_the_same_member_again_answers_200_with_the_same_body(api, tiers):
    first = post(api, "/api/v1/members", enrolment())

    again = post(api, "/api/v1/members", enrolment())

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Member.objects.filter(external_id="M-API-1").count() == 1


@pytest.mark.parametrize(
    "other", [{"email": "other@example.com"}, {"first_name": "Eva"}, {"last_name": ""}]
)
def test_the_same_customer_code_with_other_data_is_a_409_conflict(api, tiers, other):
    post(api, "/api/v1/members", enrolment())

    response = post(api, "/api/v1/members", enrolment(**other))

    body = assert_problem(response, 409, fields={"external_id"})
    assert "M-API-1" in body["detail"]
    member = Member.objects.get(external_id="M-API-1")
    assert (member.email, member.first_name, member.last_name) == ("ana@example.com", "Ana", "Ruiz")


@pytest.mark.parametrize(
    "body, field",
    [
        (enrolment(email="not-an-email"), "email"),
        (enrolment(email=""), "email"),
        ({"external_id": "M-API-1"}, "email"),
        (enrolment(external_id=""), "external_id"),
        (enrolment(external_id="M" * 65), "external_id"),
        (enrolment(first_name=["Ana"]), "first_name"),
        (enrolment(external_id=12), "external_id"),
        (enrolment(last_name=7), "last_name"),
        (enrolment(phone="600000000"), "phone"),
        (enrolment(external_id="AB/1"), "external_id"),
    ],
    ids=[
        "invalid-email",
        "empty-email",
        "no-email",
        "no-code",
        "long-code",
        "list",
        "numeric-code",
        "numeric-name",
        "unknown",
        "slash-in-code",
    ],
)
def test_an_invalid_enrolment_is_a_400_naming_the_field_and_enrols_nobody(api, tiers, body, field):
    response = post(api, "/api/v1/members", body)

    assert_problem(response, 400, fields={field})
    assert not Member.objects.exists()


# GET /api/v1/members/{code}


def test_the_summary_has_every_field_of_the_contract(api, make_member, buy, degradation):
    # given a Silver member who bought 10 days ago, degradation on, quarterly expiry on
    member = make_member(joined_at=timezone.now() - timedelta(days=30))
    bought_at = timezone.now() - timedelta(days=10)
    buy(member, "1000", when=bought_at)  # 1,000 points: Silver, and its 100-point bonus
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = ExpiryPolicy.Cycle.QUARTERLY, timezone.localdate()
    policy.save()
    today = timezone.localdate()
    quarter_end = {1: (3, 31), 2: (6, 30), 3: (9, 30), 4: (12, 31)}[(today.month - 1) // 3 + 1]

    # when
    response = api.get(f"/api/v1/members/{member.external_id}")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "external_id": member.external_id,
        "available": 1100,
        "pending": 0,
        "lifetime": 1000,
        "qualified_tier": SILVER,
        "effective_tier": SILVER,
        "next_tier": GOLD,
        "points_to_next_tier": 2000,
        "degrades_on": str((timezone.localtime(bought_at) + timedelta(days=90)).date()),
        "next_expiry": {
            "cutoff": str(today.replace(month=quarter_end[0], day=quarter_end[1])),
            "points": 1100,
        },
    }


def test_the_summary_shows_pending_points_apart_and_no_expiry_without_a_policy(
    api, make_member, staff
):
    member = make_member()
    adjust_points(member=member, points=300, reason="Goodwill", by=staff)

    body = api.get(f"/api/v1/members/{member.external_id}").json()

    assert set(body) == SUMMARY_FIELDS
    assert (body["available"], body["pending"]) == (300, 0)
    assert body["degrades_on"] is None and body["next_expiry"] is None
    assert body["available"] == summary(member, now=timezone.now())["available"]


@pytest.mark.parametrize("code", ["M-NOBODY", "M%00X", "x" * 500])
def test_an_unknown_member_is_a_404_problem(api, tiers, code):
    for path in [
        f"/api/v1/members/{code}",
        f"/api/v1/members/{code}/ledger",
        f"/api/v1/members/{code}/rewards",
    ]:
        assert_problem(api.get(path), 404)


# GET /api/v1/members/{code}/ledger


def test_the_ledger_lists_entries_newest_first_with_the_contract_fields(api, member, buy, staff):
    # given
    first = buy(member, "50", when=timezone.now() - timedelta(days=3))
    adjust_points(member=member, points=-20, reason="Typo", by=staff)
    buy(member, "1000", when=timezone.now() - timedelta(days=1))  # Silver and its bonus

    # when
    response = api.get(f"/api/v1/members/{member.external_id}/ledger")

    # then
    assert response.status_code == 200
    results = response.json()["results"]
    # the adjustment (now), the purchase of yesterday (its bonus written after it), the first
    assert [(entry["kind"], entry["points"]) for entry in results] == [
        ("adjustment", -20),
        ("bonus", 100),
        ("earn", 1000),
        ("earn", 50),
    ]
    assert all(
        set(entry)
        == {"issued_at", "accrue_at", "kind", "points", "definition", "reason", "transaction"}
        for entry in results
    )
    issued = [entry["issued_at"] for entry in results]
    assert issued == sorted(issued, reverse=True)
    oldest = results[-1]
    assert oldest == {
        "issued_at": oldest["issued_at"],
        "accrue_at": oldest["accrue_at"],
        "kind": "earn",
        "points": 50,
        "definition": "purchase-points",
        "reason": oldest["reason"],
        "transaction": first.external_id,
    }
    adjustment = next(entry for entry in results if entry["kind"] == "adjustment")
    assert (adjustment["points"], adjustment["reason"], adjustment["transaction"]) == (
        -20,
        "Typo",
        None,
    )


def test_the_ledger_is_paged_by_a_cursor_whose_next_link_works(api, member, buy, monkeypatch):
    # given seven entries, two pairs of them issued at the same moment (a tier-up bonus
    # with its purchase), read two by two
    monkeypatch.setattr(LedgerPage, "page_size", 2)
    now = timezone.now()
    buy(member, "10", when=now - timedelta(days=5))
    buy(member, "1000", when=now - timedelta(days=4))  # Silver: earn and bonus
    buy(member, "20", when=now - timedelta(days=3))
    buy(member, "3000", when=now - timedelta(days=2))  # Gold: earn and bonus
    buy(member, "30", when=now - timedelta(days=1))
    expected = list(
        LedgerEntry.objects.filter(member=member)
        .order_by("-issued_at", "-id")
        .values_list("kind", "points")
    )
    assert len(expected) == 7

    # when
    seen, url, pages = [], f"/api/v1/members/{member.external_id}/ledger", 0
    while url:
        page = api.get(url)
        assert page.status_code == 200, page.content
        seen += [(entry["kind"], entry["points"]) for entry in page.json()["results"]]
        url, pages = page.json()["next"], pages + 1

    # then
    assert seen == expected
    assert pages == 4


def walk_ledger(api, member, *, after_first_page=lambda: None) -> list:
    """Every entry a client reads by following `next` to the end, as (kind, points,
    transaction); `after_first_page` runs between the first page and the second."""
    seen, url = [], f"/api/v1/members/{member.external_id}/ledger"
    while url:
        page = api.get(url)
        assert page.status_code == 200, page.content
        seen += [(e["kind"], e["points"], e["transaction"]) for e in page.json()["results"]]
        url = page.json()["next"]
        if len(seen) == len(page.json()["results"]):
            after_first_page()
    return seen


def test_an_entry_written_while_a_client_pages_repeats_no_entry(api, member, buy, monkeypatch):
    # given four entries read two by two, the first page ending between a purchase and
    # its tier-up bonus (issued at the same moment)
    monkeypatch.setattr(LedgerPage, "page_size", 2)
    now = timezone.now()
    buy(member, "10", when=now - timedelta(days=5))
    buy(member, "1000", when=now - timedelta(days=3))  # Silver: earn and bonus, one moment
    buy(member, "20", when=now - timedelta(days=1))
    there = [
        (kind, points, txn)
        for kind, points, txn in LedgerEntry.objects.filter(member=member)
        .order_by("-issued_at", "-id")
        .values_list("kind", "points", "transaction__external_id")
    ]

    # when a purchase made two days ago (a till back online) is recorded after the first page
    seen = walk_ledger(
        api, member, after_first_page=lambda: buy(member, "5", when=now - timedelta(days=2))
    )

    # then every entry that was there is read once (the new one sorts above the pages read)
    assert seen == there


def test_a_moment_shared_by_more_entries_than_a_page_pages_without_repeats(
    api, member, buy, monkeypatch
):
    # given five entries issued at one moment (actions a till sent with one time), and
    # an older one, read two by two
    monkeypatch.setattr(LedgerPage, "page_size", 2)
    moment = timezone.now() - timedelta(days=2)
    buy(member, "1", when=moment - timedelta(days=1))
    for amount in ("2", "3", "4", "5", "6"):
        buy(member, amount, when=moment)
    there = list(
        LedgerEntry.objects.filter(member=member)
        .order_by("-issued_at", "-id")
        .values_list("kind", "points", "transaction__external_id")
    )

    # when a purchase is recorded now (the newest entry) after the first page
    seen = walk_ledger(api, member, after_first_page=lambda: buy(member, "7", when=timezone.now()))

    # then the pages go on where the first ended: nothing repeated, nothing skipped
    assert seen == there


def test_the_previous_link_leads_back_through_the_same_pages(api, member, buy, monkeypatch):
    # given entries sharing moments, read two by two to the last page
    monkeypatch.setattr(LedgerPage, "page_size", 2)
    moment = timezone.now() - timedelta(days=2)
    for amount in ("1000", "2", "3", "4"):  # the first with its tier-up bonus
        buy(member, amount, when=moment)
    forward, url = [], f"/api/v1/members/{member.external_id}/ledger"
    while url:
        page = api.get(url).json()
        forward.append([(e["kind"], e["points"]) for e in page["results"]])
        url, last = page["next"], page

    # when following `previous` from the last page
    backward, url = [], last["previous"]
    while url:
        page = api.get(url).json()
        backward.append([(e["kind"], e["points"]) for e in page["results"]])
        url = page["previous"]

    # then the same pages, in the other order
    assert backward == forward[-2::-1]


def test_a_cursor_given_before_cursors_named_their_entry_is_still_followed(api, member, buy):
    # given a cursor of a time alone, as the API gave them before
    buy(member, "10", when=timezone.now() - timedelta(days=3))
    buy(member, "20", when=timezone.now() - timedelta(days=1))
    moment = (timezone.now() - timedelta(days=2)).isoformat()
    cursor = base64.b64encode(urlencode({"p": moment}).encode()).decode()

    # when followed
    response = api.get(f"/api/v1/members/{member.external_id}/ledger?cursor={cursor}")

    # then the entries older than that time
    assert response.status_code == 200, response.content
    assert [e["points"] for e in response.json()["results"]] == [10]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.b64encode(b"p=not-a-time").decode(),
        base64.b64encode(b"o=-5").decode(),
        base64.b64encode(b"p=0001-01-01T00:00:00%2B14:00").decode(),
        base64.b64encode(b"p=9999-12-31T23:59:59-14:00").decode(),
        base64.b64encode(b"p=2026-01-01T00:00:00").decode(),
    ],
    ids=[
        "not-base64",
        "position-not-a-time",
        "negative-offset",
        "before-year-1-in-utc",
        "after-year-9999-in-utc",
        "without-offset",
    ],
)
def test_a_bad_cursor_is_a_400_naming_it(api, member, buy, cursor):
    buy(member, "10")

    response = api.get(
        f"/api/v1/members/{member.external_id}/ledger?{urlencode({'cursor': cursor})}"
    )

    assert_problem(response, 400, fields={"cursor"})


# GET /api/v1/members/{code}/rewards


def test_the_catalogue_says_what_is_redeemable_and_why_the_rest_is_locked(
    api, member, staff, catalogue
):
    adjust_points(member=member, points=200, reason="Goodwill", by=staff)

    response = api.get(f"/api/v1/members/{member.external_id}/rewards")

    assert response.status_code == 200
    items = {item["name"]: item for item in response.json()}
    assert set(items) == set(catalogue)
    assert all(
        set(item)
        == {"id", "name", "points_cost", "min_tier", "redeemable", "locked_reason", "voucher_value"}
        for item in items.values()
    )
    assert items["Coffee voucher"] == {
        "id": catalogue["Coffee voucher"].pk,
        "name": "Coffee voucher",
        "points_cost": 150,
        "min_tier": None,
        "redeemable": True,
        "locked_reason": None,
        "voucher_value": None,  # a product, not money (W5)
    }
    assert items["5 euro voucher"]["voucher_value"] == "5.00"
    assert items["5 euro voucher"]["redeemable"] is False
    assert items["5 euro voucher"]["locked_reason"] == "Needs 300 more points"
    assert items["Tote bag"]["min_tier"] == "silver"
    assert (items["Tote bag"]["redeemable"], items["Tote bag"]["locked_reason"]) == (
        False,
        "Needs Silver",
    )
