"""Redemptions through the API (W3, W4, P8): 201 then an exact repeat 200; the same id
for another reward or member 409; a rule refused 422 with its message; a cancellation
gives the points and the unit back, and cancelling again answers the same."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.services import merge_members
from points.models import LedgerEntry
from points.services import adjust_points
from rewards.models import Redemption, Reward
from tests.api.conftest import assert_problem, client_for, new_id, post
from tests.conftest import ledger_state, summary

pytestmark = pytest.mark.django_db

REDEMPTION_FIELDS = {
    "id",
    "external_id",
    "member",
    "reward",
    "reward_name",
    "points",
    "status",
    "redeemed_at",
    "cancelled_at",
    "code",
    "voucher_status",
    "valid_until",
    "value",
    "used_at",
}


@pytest.fixture
def rich(member, staff):
    """A Bronze member with 1,000 points available."""
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    return member


def redemption(buyer, item, **fields):
    return {
        "external_id": new_id("RD"),
        "member": buyer.external_id,
        "reward": item.pk,
        **fields,
    }


def available(member):
    return summary(member, now=timezone.now())["available"]


def test_W3_a_redemption_answers_201_and_spends_the_points(api, rich, catalogue):
    body = redemption(rich, catalogue["Coffee voucher"])

    response = post(api, "/api/v1/redemptions", body)

    assert response.status_code == 201, response.json()
    result = response.json()
    assert set(result) == REDEMPTION_FIELDS
    made = Redemption.objects.get()
    assert {k: result[k] for k in REDEMPTION_FIELDS - {"redeemed_at"}} == {
        "id": made.pk,
        "external_id": body["external_id"],
        "member": rich.external_id,
        "reward": catalogue["Coffee voucher"].pk,
        "reward_name": "Coffee voucher",
        "points": 150,
        "status": "redeemed",
        "cancelled_at": None,
        "code": made.code,
        "voucher_status": "valid",
        "valid_until": (timezone.localdate() + timedelta(days=90)).isoformat(),
        "value": None,
        "used_at": None,
    }
    assert available(rich) == 850
    assert LedgerEntry.objects.get(member=rich, kind="redemption").points == -150


def test_P8_the_same_redemption_again_answers_200_with_the_same_body(api, rich, catalogue):
    body = redemption(rich, catalogue["Coffee voucher"])
    first = post(api, "/api/v1/redemptions", body)
    state = ledger_state()

    again = post(api, "/api/v1/redemptions", body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ledger_state() == state
    assert Redemption.objects.count() == 1
    assert available(rich) == 850


@pytest.mark.parametrize("since", ["cancelled", "used"])
def test_P8_the_same_redemption_again_answers_the_first_body_after_a_cancel_or_a_use(
    api, rich, catalogue, since
):
    # given a redemption, cancelled or used since
    body = redemption(rich, catalogue["5 euro voucher"])
    first = post(api, "/api/v1/redemptions", body)
    if since == "cancelled":
        cancelled = post(api, f"/api/v1/redemptions/{first.json()['id']}/cancel", {})
        assert cancelled.status_code == 200
    else:
        used = post(api, f"/api/v1/vouchers/{first.json()['code']}/use", {"external_id": "T-9"})
        assert used.status_code == 201
    state = ledger_state()

    # when
    again = post(api, "/api/v1/redemptions", body)

    # then: the first answer (as a repeat of a purchase gives), nothing written
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ledger_state() == state


def test_P8_the_same_id_for_another_reward_or_member_is_a_409(
    api, rich, make_member, staff, catalogue
):
    # given
    body = redemption(rich, catalogue["Coffee voucher"])
    post(api, "/api/v1/redemptions", body)
    other = make_member()
    adjust_points(member=other, points=1000, reason="Welcome", by=staff)
    state = ledger_state()

    # when
    other_reward = post(
        api, "/api/v1/redemptions", {**body, "reward": catalogue["5 euro voucher"].pk}
    )
    other_member = post(api, "/api/v1/redemptions", {**body, "member": other.external_id})

    # then
    for response in (other_reward, other_member):
        problem = assert_problem(response, 409, fields={"external_id"})
        assert body["external_id"] in problem["detail"]
    assert ledger_state() == state
    assert Redemption.objects.count() == 1


def test_W3_not_enough_points_is_a_422_with_the_rule_s_message_and_spends_nothing(
    api, member, staff, catalogue
):
    adjust_points(member=member, points=100, reason="Welcome", by=staff)
    state = ledger_state()

    response = post(api, "/api/v1/redemptions", redemption(member, catalogue["Coffee voucher"]))

    assert_problem(response, 422, detail="Coffee voucher: Needs 50 more points.")
    assert ledger_state() == state
    assert not Redemption.objects.exists()


def test_W3_a_tier_too_low_is_a_422(api, rich, catalogue):
    state = ledger_state()

    response = post(api, "/api/v1/redemptions", redemption(rich, catalogue["Tote bag"]))

    assert_problem(response, 422, detail="Tote bag: Needs Silver.")
    assert ledger_state() == state
    assert Reward.objects.get(name="Tote bag").stock == 200


def test_unknown_members_and_rewards_are_404(api, rich, catalogue):
    coffee = catalogue["Coffee voucher"]
    state = ledger_state()

    for body in [
        redemption(rich, coffee, member="M-NOBODY"),
        redemption(rich, coffee, reward=999_999),
    ]:
        assert_problem(post(api, "/api/v1/redemptions", body), 404)
    assert ledger_state() == state


def test_W1_a_reward_no_longer_offered_is_a_422_but_a_repeat_still_answers_200(
    api, rich, catalogue
):
    # given a redemption, then the reward withdrawn
    coffee = catalogue["Coffee voucher"]
    made = redemption(rich, coffee)
    first = post(api, "/api/v1/redemptions", made)
    Reward.objects.filter(pk=coffee.pk).update(is_active=False)
    state = ledger_state()

    # when
    again = post(api, "/api/v1/redemptions", made)
    new = post(api, "/api/v1/redemptions", redemption(rich, coffee))

    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert_problem(new, 422, detail="Coffee voucher: No longer offered.")
    assert ledger_state() == state


@pytest.mark.parametrize(
    "replace, field",
    [
        ({"reward": "coffee"}, "reward"),
        ({"reward": "5"}, "reward"),
        ({"reward": 0}, "reward"),
        ({"reward": 2**63}, "reward"),
        ({"reward": 1.5}, "reward"),
        ({"external_id": None}, "external_id"),
        ({"external_id": 5}, "external_id"),
        ({"points": 150}, "points"),
    ],
    ids=["text", "number-as-text", "zero", "too-big", "fraction", "no-id", "numeric-id", "unknown"],
)
def test_a_redemption_wrong_on_its_own_is_a_400_naming_the_field(
    api, rich, catalogue, replace, field
):
    body = {**redemption(rich, catalogue["Coffee voucher"]), **replace}
    body = {k: v for k, v in body.items() if v is not None}
    state = ledger_state()

    response = post(api, "/api/v1/redemptions", body)

    assert_problem(response, 400, fields={field})
    assert ledger_state() == state


# W4


def test_W4_cancelling_gives_the_points_and_the_unit_back(api, rich, catalogue):
    # given
    limited = Reward.objects.create(name="Mug", points_cost=300, stock=5)
    made = post(api, "/api/v1/redemptions", redemption(rich, limited)).json()
    assert (available(rich), Reward.objects.get(pk=limited.pk).stock) == (700, 4)

    # when
    response = api.post(f"/api/v1/redemptions/{made['id']}/cancel")

    # then
    assert response.status_code == 200, response.json()
    result = response.json()
    assert set(result) == REDEMPTION_FIELDS
    assert (result["id"], result["status"]) == (made["id"], "cancelled")
    assert result["cancelled_at"] is not None
    assert (available(rich), Reward.objects.get(pk=limited.pk).stock) == (1000, 5)
    refund = LedgerEntry.objects.get(member=rich, kind="refund")
    assert (refund.points, refund.counts_toward_tier) == (300, False)
    assert summary(rich, now=timezone.now())["lifetime"] == 0
    call_command("check_ledger")


def test_W4_cancelling_again_answers_200_with_the_same_body_and_refunds_once(api, rich, catalogue):
    made = post(api, "/api/v1/redemptions", redemption(rich, catalogue["Coffee voucher"])).json()
    first = api.post(f"/api/v1/redemptions/{made['id']}/cancel")
    state = ledger_state()

    again = api.post(f"/api/v1/redemptions/{made['id']}/cancel")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert ledger_state() == state
    assert LedgerEntry.objects.filter(member=rich, kind="refund").count() == 1
    assert available(rich) == 1000


def test_W4_cancelling_an_unknown_redemption_is_a_404_and_needs_a_key(api, rich, catalogue):
    made = post(api, "/api/v1/redemptions", redemption(rich, catalogue["Coffee voucher"])).json()

    unknown = api.post("/api/v1/redemptions/999999/cancel")
    assert_problem(unknown, 404)
    assert unknown.json()["detail"] == "No redemption of this channel has the id 999999."
    assert_problem(client_for(None).post(f"/api/v1/redemptions/{made['id']}/cancel"), 401)
    assert Redemption.objects.get(pk=made["id"]).status == "redeemed"


def test_W4_a_key_cancels_only_what_its_channel_redeemed(api, shop, rich, catalogue, staff):
    # given: one redemption through the till's key, one by a CX agent in the CX Manager
    from rewards.services import redeem

    coffee = catalogue["Coffee voucher"]
    by_till = post(api, "/api/v1/redemptions", redemption(rich, coffee)).json()
    by_staff = redeem(member=rich, reward=coffee, by=staff)
    state = ledger_state()

    # when: the web shop's key tries the till's, and the till's key tries the agent's
    shop_tries = client_for(shop.secret).post(f"/api/v1/redemptions/{by_till['id']}/cancel")
    till_tries = api.post(f"/api/v1/redemptions/{by_staff.pk}/cancel")

    # then: both unknown to them, nothing refunded
    assert_problem(shop_tries, 404)
    assert_problem(till_tries, 404)
    assert ledger_state() == state
    assert set(Redemption.objects.values_list("status", flat=True)) == {"redeemed"}

    # and the till's key cancels its own
    assert api.post(f"/api/v1/redemptions/{by_till['id']}/cancel").status_code == 200


def test_P8_a_redemption_sent_again_after_a_merge_is_a_repeat(till, make_member, staff, catalogue):
    # given: the app redeemed a coffee for M-OLD; then the agent merged M-OLD into M-KEEP
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=1000, reason="Welcome", by=staff)
    app = client_for(till.secret)
    body = {
        "external_id": "RD-MERGE-1",
        "member": "M-OLD",
        "reward": catalogue["Coffee voucher"].pk,
    }
    first = post(app, "/api/v1/redemptions", body)
    assert first.status_code == 201
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Same customer")

    # when: the app, which never got the first answer (a time-out), sends it again
    again = post(app, "/api/v1/redemptions", body)

    # then: an exact repeat, as a purchase repeated after a merge is (200, the first body)
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert Redemption.objects.count() == 1
    assert summary(keep)["available"] == 850


def test_P8_the_same_redemption_id_from_another_key_is_a_conflict(
    till, shop, make_member, staff, catalogue
):
    member = make_member()
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    body = {
        "external_id": "RD-X",
        "member": member.external_id,
        "reward": catalogue["Coffee voucher"].pk,
    }
    assert post(client_for(till.secret), "/api/v1/redemptions", body).status_code == 201

    online = post(client_for(shop.secret), "/api/v1/redemptions", body)

    # the till's redemption, not the shop's: a conflict (P8), not its answer
    assert_problem(online, 409, fields=["external_id"])
    assert Redemption.objects.count() == 1
