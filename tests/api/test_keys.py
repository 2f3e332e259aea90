"""Keys (DESIGN.md, Integration API): no valid key is a 401 problem, never a 403; a
key's channel and store are its transactions'; and everything written through the API
names its key, in the ledger, the tier history and the admin's history."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from api.models import ApiKey
from api.services import create_api_key
from members.models import Member, TierChange
from points.models import LedgerEntry, Transaction
from rewards.models import Redemption
from tests.api.conftest import assert_problem, client_for, new_id, post, recently
from tests.conftest import ledger_state
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


# 401, never 403


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Api-Key ",
        "Api-Key not-a-key",
        "Api-Key abcdefgh.0123456789abcdef0123456789abcdef",
        "Bearer abcdefgh.0123456789abcdef",
        "Token x",
    ],
    ids=["missing", "empty", "garbage", "unknown-prefix", "bearer", "token"],
)
def test_no_valid_key_is_a_401_problem_never_a_403(member, authorization):
    client = client_for(None)
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}

    read = client.get(f"/api/v1/members/{member.external_id}", **extra)
    write = post(client, "/api/v1/members", {"external_id": "M-NEW", "email": "a@b.co"}, **extra)

    for response in (read, write):
        assert_problem(response, 401)
        assert response["WWW-Authenticate"] == "Api-Key"
    assert not Member.objects.filter(external_id="M-NEW").exists()


def test_a_valid_key_sent_as_a_bearer_token_is_a_401_saying_how_to_send_it(till, member):
    # as a client generated from the schema sends it unless told the prefix
    client = client_for(None)

    response = client.get(
        f"/api/v1/members/{member.external_id}", HTTP_AUTHORIZATION=f"Bearer {till.secret}"
    )

    problem = assert_problem(response, 401)
    assert problem["detail"] == (
        'Send the API key as "Authorization: Api-Key <key>", not "Bearer ...".'
    )


def test_a_wrong_secret_for_a_real_key_is_401(till, member):
    prefix = till.secret.partition(".")[0]

    response = client_for(f"{prefix}.wrongwrongwrongwrongwrongwrong").get(
        f"/api/v1/members/{member.external_id}"
    )

    assert_problem(response, 401)


@pytest.mark.parametrize("secret", ["a\x00b.c", "abc\x7f.def", "\u00e9t\u00e9.x"])
def test_a_key_of_characters_no_key_holds_is_401(member, secret):
    """Found by a review: a NUL in the key was a 500 on PostgreSQL."""
    response = client_for(secret).get(f"/api/v1/members/{member.external_id}")

    assert assert_problem(response, 401)["detail"] == "This API key is wrong or revoked."


def test_a_revoked_key_is_401(till, member, purchase):
    # given
    ApiKey.objects.filter(pk=till.pk).update(revoked=True)
    state = ledger_state()

    # when
    read = client_for(till.secret).get(f"/api/v1/members/{member.external_id}")
    write = post(client_for(till.secret), "/api/v1/transactions", purchase(member))

    # then
    assert_problem(read, 401)
    assert_problem(write, 401)
    assert ledger_state() == state


def test_an_expired_key_is_401_and_a_key_before_its_expiry_works(member):
    _, expired = create_api_key(
        name="Old till", channel="pos", expiry_date=timezone.now() - timedelta(minutes=1)
    )
    _, valid = create_api_key(
        name="New till", channel="pos", expiry_date=timezone.now() + timedelta(days=1)
    )

    gone = client_for(expired).get(f"/api/v1/members/{member.external_id}")
    works = client_for(valid).get(f"/api/v1/members/{member.external_id}")

    body = assert_problem(gone, 401)
    assert "expired" in body["detail"]
    assert works.status_code == 200


def test_a_key_records_when_it_was_last_used(api, till, member):
    assert till.last_used_at is None

    api.get(f"/api/v1/members/{member.external_id}")

    till.refresh_from_db()
    assert timezone.now() - till.last_used_at < timedelta(minutes=1)


# Channel and store


def test_a_transaction_takes_its_key_s_channel_and_store(api, purchase):
    body = purchase(store="STORE-99")

    response = post(api, "/api/v1/transactions", body)

    assert response.status_code == 201, response.json()
    assert (response.json()["channel"], response.json()["store"]) == ("pos", "STORE-12")
    txn = Transaction.objects.get(external_id=body["external_id"])
    assert (txn.channel, txn.store) == ("pos", "STORE-12")


def test_a_key_without_a_store_takes_the_store_from_the_body(shop, purchase):
    body = purchase(store="WEB-ES")

    response = post(client_for(shop.secret), "/api/v1/transactions", body)

    assert response.status_code == 201, response.json()
    assert (response.json()["channel"], response.json()["store"]) == ("ecommerce", "WEB-ES")
    txn = Transaction.objects.get(external_id=body["external_id"])
    assert (txn.channel, txn.store) == ("ecommerce", "WEB-ES")


def test_a_return_takes_its_key_s_channel_and_store_like_a_purchase(till, shop, purchase):
    # given a purchase in a store, returned through the web shop
    bought = purchase(amount="100.00")
    post(client_for(till.secret), "/api/v1/transactions", bought)
    returned = {
        **bought,
        "external_id": new_id("R"),
        "kind": "return",
        "amount": "40.00",
        "original_external_id": bought["external_id"],
        "store": "WEB-ES",
    }

    # when
    response = post(client_for(shop.secret), "/api/v1/transactions", returned)

    # then
    assert response.status_code == 201, response.json()
    assert (response.json()["channel"], response.json()["store"]) == ("ecommerce", "WEB-ES")
    txn = Transaction.objects.get(external_id=returned["external_id"])
    assert (txn.channel, txn.store) == ("ecommerce", "WEB-ES")


def test_an_action_takes_its_key_s_channel(shop, member):
    body = {
        "external_id": new_id("A"),
        "member": member.external_id,
        "definition": "write-a-review",
        "occurred_at": recently(),
    }

    response = post(client_for(shop.secret), "/api/v1/actions", body)

    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "ecommerce"
    assert Transaction.objects.get(external_id=body["external_id"]).channel == "ecommerce"


# Every ledger entry made through the API names its key


def test_every_ledger_entry_made_through_the_api_names_its_key(api, till, member, catalogue):
    # when a purchase takes the member to Silver (earning and tier-up bonus), a return,
    # an action, a redemption and its cancellation, all through the API
    bought = {
        "external_id": new_id("P"),
        "member": member.external_id,
        "kind": "purchase",
        "amount": "1000.00",
        "occurred_at": recently(2),
    }
    assert post(api, "/api/v1/transactions", bought).status_code == 201
    returned = {
        **bought,
        "external_id": new_id("R"),
        "kind": "return",
        "amount": "10.00",
        "original_external_id": bought["external_id"],
        "occurred_at": recently(1),
    }
    assert post(api, "/api/v1/transactions", returned).status_code == 201
    action = {
        "external_id": new_id("A"),
        "member": member.external_id,
        "definition": "write-a-review",
        "occurred_at": recently(1),
    }
    assert post(api, "/api/v1/actions", action).status_code == 201
    redeemed = post(
        api,
        "/api/v1/redemptions",
        {
            "external_id": new_id("RD"),
            "member": member.external_id,
            "reward": catalogue["Coffee voucher"].pk,
        },
    )
    assert redeemed.status_code == 201, redeemed.json()
    cancelled = api.post(f"/api/v1/redemptions/{redeemed.json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.json()

    # then every entry names the key's account
    entries = LedgerEntry.objects.filter(member=member)
    assert sorted(entries.values_list("kind", flat=True)) == sorted(
        ["earn", "bonus", "return", "earn", "redemption", "refund"]
    )
    assert {entry.created_by_id for entry in entries} == {till.user_id}
    # and so does each transaction
    recorded = Transaction.objects.filter(member=member).values_list("created_by", flat=True)
    assert set(recorded) == {till.user_id}
    # and so does the tier history: up to Silver (the purchase), down (the return), up
    # again (the action)
    changes = TierChange.objects.filter(member=member).order_by("pk")
    assert [change.reason for change in changes] == ["joined", "upgrade", "downgrade", "upgrade"]
    assert {change.created_by_id for change in changes[1:]} == {till.user_id}
    # and the redemption and its cancellation
    redemption = Redemption.objects.get(pk=redeemed.json()["id"])
    assert (redemption.redeemed_by_id, redemption.cancelled_by_id) == (till.user_id, till.user_id)


def test_a_purchase_through_the_api_that_restores_a_tier_names_its_key(
    api, till, make_member, buy, degradation
):
    # given a Silver member degraded to Bronze after 90 days without a purchase
    joined = timezone.now() - timedelta(days=400)
    member = make_member(joined_at=joined)
    buy(member, "1000", when=joined + timedelta(days=1))
    degrade_inactive_members(now=timezone.now())
    member.refresh_from_db()
    assert member.effective_tier.code == "bronze" and member.qualified_tier.code == "silver"

    # when
    body = {
        "external_id": new_id("P"),
        "member": member.external_id,
        "kind": "purchase",
        "amount": "10.00",
        "occurred_at": recently(),
    }
    response = post(api, "/api/v1/transactions", body)

    # then
    assert response.status_code == 201, response.json()
    assert response.json()["summary"]["effective_tier"]["code"] == "silver"
    restoration = TierChange.objects.get(member=member, reason="restoration")
    assert restoration.created_by_id == till.user_id


# Every admin history row made through the API names its key


def history(obj):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    )


def test_an_enrolment_through_the_api_is_in_the_admin_history_naming_its_key(api, till, tiers):
    body = {"external_id": "M-LOG-1", "email": "log1@example.com"}

    assert post(api, "/api/v1/members", body).status_code == 201
    assert post(api, "/api/v1/members", body).status_code == 200  # a repeat logs nothing

    member = Member.objects.get(external_id="M-LOG-1")
    (log,) = history(member)
    assert log.user_id == till.user_id
    assert log.action_flag == ADDITION
    assert log.get_change_message() == "Enrolled through the API"


def test_a_redemption_and_its_cancellation_through_the_api_are_in_the_admin_history(
    api, till, member, catalogue, buy
):
    # given
    buy(member, "500")
    body = {
        "external_id": new_id("RD"),
        "member": member.external_id,
        "reward": catalogue["Coffee voucher"].pk,
    }

    # when
    first = post(api, "/api/v1/redemptions", body)
    post(api, "/api/v1/redemptions", body)  # a repeat logs nothing
    api.post(f"/api/v1/redemptions/{first.json()['id']}/cancel")
    api.post(f"/api/v1/redemptions/{first.json()['id']}/cancel")  # nor does this

    # then
    logs = list(history(member).order_by("pk"))
    assert [(log.user_id, log.get_change_message()) for log in logs] == [
        (till.user_id, "Redeemed Coffee voucher through the API"),
        (till.user_id, "Cancelled the redemption of Coffee voucher through the API"),
    ]


def test_a_refused_write_leaves_no_admin_history(api, member, catalogue):
    body = {
        "external_id": new_id("RD"),
        "member": member.external_id,
        "reward": catalogue["Coffee voucher"].pk,
    }

    response = post(api, "/api/v1/redemptions", body)

    assert_problem(response, 422)
    assert not LogEntry.objects.exists()


def test_a_purchase_that_earns_nothing_names_its_key_on_its_page(api, till, member, client, login):
    """Found by a review: a purchase of 0 points writes no ledger entry, and nothing
    said which of a store's tills sent it."""
    # when: a purchase too small to earn a point
    body = {
        "external_id": new_id("P"),
        "member": member.external_id,
        "kind": "purchase",
        "amount": "0.50",
        "occurred_at": recently(),
    }
    response = post(api, "/api/v1/transactions", body)
    assert response.status_code == 201 and response.json()["points"] == 0

    # then: its page in the CX Manager names the key's account
    txn = Transaction.objects.get(external_id=body["external_id"])
    assert txn.created_by_id == till.user_id
    login("CX agent")
    page = client.get(reverse("admin:points_transaction_change", args=[txn.pk]))
    assert "Recorded by" in page.content.decode()
    assert till.name in page.content.decode()
