"""Vouchers through the API (W5): a till checks a code and uses it once; a use is
idempotent on its external_id like every write; errors are problems, nothing written;
an unknown code is a 404 counted against the key's rate."""

from datetime import datetime, time, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from members.services import enroll_member, merge_members
from points.services import adjust_points
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption, redeem, release_expired_vouchers
from tests.api.conftest import assert_problem, client_for, new_id, post
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db

VOUCHER_FIELDS = {
    "code",
    "status",
    "reward",
    "reward_name",
    "value",
    "member",
    "redemption",
    "redeemed_at",
    "valid_until",
    "used_at",
    "used_external_id",
    "used_channel",
    "used_store",
    "cancelled_at",
}


@pytest.fixture
def five_euro(rich, catalogue):
    """A 5 euro voucher of the member, redeemed today."""
    return redeem(member=rich, reward=catalogue["5 euro voucher"])


def state():
    return (
        ledger_state(),
        list(
            Redemption.objects.values_list("status", "used_at", "used_external_id").order_by("pk")
        ),
        LogEntry.objects.count(),
    )


def use(client, code, external_id="RECEIPT-1", **body):
    return post(client, f"/api/v1/vouchers/{code}/use", {"external_id": external_id, **body})


def test_W5_a_till_reads_a_voucher_s_reward_value_member_and_status(api, rich, five_euro):
    response = api.get(f"/api/v1/vouchers/{five_euro.code}")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == VOUCHER_FIELDS
    assert {k: body[k] for k in VOUCHER_FIELDS - {"redeemed_at"}} == {
        "code": five_euro.code,
        "status": "valid",
        "reward": five_euro.reward_id,
        "reward_name": "5 euro voucher",
        "value": "5.00",
        "member": rich.external_id,
        "redemption": five_euro.pk,
        "valid_until": (timezone.localdate() + timedelta(days=90)).isoformat(),
        "used_at": None,
        "used_external_id": None,
        "used_channel": "",
        "used_store": "",
        "cancelled_at": None,
    }


def test_W5_a_code_is_found_as_a_person_types_it(api, five_euro):
    typed = five_euro.shown_code.lower()  # hk7m-2pxc-...

    response = api.get(f"/api/v1/vouchers/{typed}")

    assert response.status_code == 200
    assert response.json()["code"] == five_euro.code


@pytest.mark.parametrize(
    "code",
    ["HK7M2PXC9RTA4WNE", "M-00001", "x" * 300, "%00"],
    ids=["unknown", "customer", "long", "nul"],
)
def test_W5_an_unknown_code_is_a_404_problem_for_reading_and_using(api, five_euro, code):
    before = state()

    assert_problem(api.get(f"/api/v1/vouchers/{code}"), 404)
    assert_problem(use(api, code), 404)
    assert state() == before


def test_W5_a_use_answers_201_then_an_exact_repeat_200_with_the_same_body(api, till, five_euro):
    # when
    first = use(api, five_euro.code, "RECEIPT-1")
    state_after_first = state()
    again = use(api, five_euro.shown_code, "RECEIPT-1")

    # then
    assert (first.status_code, again.status_code) == (201, 200), first.json()
    assert again.json() == first.json()
    body = first.json()
    assert (body["status"], body["used_external_id"]) == ("used", "RECEIPT-1")
    assert (body["used_channel"], body["used_store"]) == ("pos", "STORE-12")  # the key's
    assert state() == state_after_first
    used = Redemption.objects.get(pk=five_euro.pk)
    assert used.used_by == till.user
    history = LogEntry.objects.get(user_id=till.user_id)
    assert history.change_message == (
        f"Used the 5 euro voucher of redemption {five_euro.pk} through the API"
    )


def test_a_voucher_of_a_merged_account_used_at_a_till_is_in_the_kept_account_s_history(
    api, till, five_euro, make_member, staff
):
    """Found by a review: the use was written in the history of the closed account, where
    a cancellation of the same voucher is written in the kept one's."""
    # given: the customer's voucher account merged into the one they keep
    kept = make_member("M-KEPT")
    merge_members(survivor=kept, duplicate=five_euro.member, by=staff, reason="Same customer")

    # when: a till uses the voucher
    assert use(api, five_euro.code).status_code == 201

    # then: the kept account's history says so
    history = LogEntry.objects.get(user_id=till.user_id)
    assert history.object_id == str(kept.pk)


def test_W5_another_use_of_a_used_voucher_is_a_422_saying_when_and_where(api, shop, five_euro):
    use(api, five_euro.code, "RECEIPT-1")
    used_at = timezone.localtime(Redemption.objects.get(pk=five_euro.pk).used_at)
    before = state()

    response = use(client_for(shop.secret), five_euro.code, "ORDER-77")

    assert_problem(
        response,
        422,
        detail=f"This 5 euro voucher was already used on {used_at:%-d %b %Y at %H:%M} at STORE-12.",
    )
    assert state() == before


def test_W5_expired_and_cancelled_vouchers_are_422s(api, rich, catalogue, staff):
    # given
    old = redeem(
        member=rich, reward=catalogue["5 euro voucher"], now=timezone.now() - timedelta(days=120)
    )
    cancelled = redeem(member=rich, reward=catalogue["Coffee voucher"])
    cancel_redemption(redemption=cancelled, by=staff)
    before = state()

    # when
    expired_use = use(api, old.code, "RECEIPT-1")
    cancelled_use = use(api, cancelled.code, "RECEIPT-2")

    # then
    problem = assert_problem(expired_use, 422)
    assert problem["detail"].startswith("This 5 euro voucher expired: it was valid until the end")
    problem = assert_problem(cancelled_use, 422)
    assert problem["detail"].startswith("This Coffee voucher was cancelled on")
    assert state() == before
    assert api.get(f"/api/v1/vouchers/{old.code}").json()["status"] == "expired"
    assert api.get(f"/api/v1/vouchers/{cancelled.code}").json()["status"] == "cancelled"


def test_W5_the_same_use_id_for_another_voucher_is_a_409(api, rich, catalogue, five_euro):
    other = redeem(member=rich, reward=catalogue["Coffee voucher"])
    use(api, five_euro.code, "RECEIPT-1")
    before = state()

    response = use(api, other.code, "RECEIPT-1")

    assert_problem(
        response,
        409,
        fields={"external_id"},
        detail="RECEIPT-1 was already used for another voucher.",
    )
    assert state() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "external_id"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": 7}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"external_id": "R-1", "store": "STORE-1"}, "store"),
    ],
    ids=["missing", "blank", "number", "too-long", "unknown-field"],
)
def test_W5_a_use_wrong_on_its_own_is_a_400_naming_the_field(api, five_euro, body, field):
    before = state()

    response = post(api, f"/api/v1/vouchers/{five_euro.code}/use", body)

    assert_problem(response, 400, fields={field})
    assert state() == before


def test_W5_vouchers_need_a_key(five_euro):
    anonymous = client_for(None)
    assert_problem(anonymous.get(f"/api/v1/vouchers/{five_euro.code}"), 401)
    assert_problem(use(anonymous, five_euro.code), 401)
    assert Redemption.objects.get(pk=five_euro.pk).used_at is None


def test_W4_a_used_voucher_cannot_be_cancelled_through_the_api(api, rich, catalogue):
    # given: redeemed and used through the till's key
    made = post(
        api,
        "/api/v1/redemptions",
        {"external_id": "RD-1", "member": rich.external_id, "reward": catalogue["Tote bag"].pk},
    )
    assert made.status_code == 422  # Bronze: the tote bag needs Silver
    made = post(
        api,
        "/api/v1/redemptions",
        {
            "external_id": "RD-2",
            "member": rich.external_id,
            "reward": catalogue["Coffee voucher"].pk,
        },
    ).json()
    assert (made["voucher_status"], len(made["code"])) == ("valid", 16)
    use(api, made["code"])
    before = state()

    # when
    response = api.post(f"/api/v1/redemptions/{made['id']}/cancel")

    # then
    problem = assert_problem(response, 422)
    assert "a used voucher cannot be cancelled" in problem["detail"]
    assert state() == before


def test_W5_unknown_codes_count_against_the_key_s_rate(api, shop, five_euro, settings):
    # given: three requests a minute
    settings.API_RATE = "3/min"
    for n in range(3):
        assert_problem(api.get(f"/api/v1/vouchers/HK7M2PXC9RTA4WN{'EFH'[n]}"), 404)

    # when: the next guess, and even the right code
    guess = api.get("/api/v1/vouchers/HK7M2PXC9RTA4WNJ")
    right = api.get(f"/api/v1/vouchers/{five_euro.code}")
    guessed_use = use(api, "HK7M2PXC9RTA4WNK")

    # then: told to wait, nothing said about the codes
    for response in (guess, right, guessed_use):
        assert_problem(response, 429)
        assert 0 < int(response["Retry-After"]) <= 60
    assert Redemption.objects.get(pk=five_euro.pk).used_at is None
    # another key counts on its own
    assert client_for(shop.secret).get(f"/api/v1/vouchers/{five_euro.code}").status_code == 200


def test_W5_the_same_use_id_from_another_key_is_a_conflict_not_a_second_success(
    till, shop, make_member, staff, catalogue
):
    # given: the 5 euro voucher was used at the till of STORE-12 with its receipt id
    member = make_member()
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = redeem(member=member, reward=catalogue["5 euro voucher"])
    store = post(
        client_for(till.secret),
        f"/api/v1/vouchers/{voucher.code}/use",
        {"external_id": "RECEIPT-1"},
    )
    assert store.status_code == 201

    # when: the web shop, whose order numbers happen to look the same, uses the same code
    online = post(
        client_for(shop.secret),
        f"/api/v1/vouchers/{voucher.code}/use",
        {"external_id": "RECEIPT-1"},
    )

    # then: the shop must not be told it went through (it would take 5 euro off again):
    # another channel's use is other content (P8: a conflict, as for transactions)
    assert_problem(online, 409, fields=["external_id"])


def test_W6_the_unit_of_a_voucher_that_expired_unused_is_redeemed_again(api, rich, staff):
    # given: the last tote bag went to a voucher; another customer finds it out of stock
    tote = Reward.objects.create(name="Tote bag", points_cost=100, stock=1)
    other = enroll_member(external_id="M-OTHER", email="other@example.com")
    adjust_points(member=other, points=500, reason="Welcome", by=staff)

    def redeem_it(code):
        body = {"external_id": new_id("R"), "member": code, "reward": tote.pk}
        return post(api, "/api/v1/redemptions", body)

    def locked_reason():
        catalogue = api.get("/api/v1/members/M-OTHER/rewards").json()
        return {item["name"]: item["locked_reason"] for item in catalogue}["Tote bag"]

    assert redeem_it(rich.external_id).status_code == 201
    refused = redeem_it("M-OTHER")
    assert_problem(refused, 422, detail="Tote bag: Out of stock.")
    assert locked_reason() == "Out of stock"

    # when: the voucher passes its last day unused, and the nightly job runs
    day_after = Redemption.objects.get().valid_until + timedelta(days=1)
    release_expired_vouchers(now=timezone.make_aware(datetime.combine(day_after, time(0, 10))))

    # then: the other customer sees the tote bag and redeems it
    assert locked_reason() is None
    assert redeem_it("M-OTHER").status_code == 201
