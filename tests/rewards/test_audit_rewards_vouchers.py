"""Audit of the catalogue, redemptions, cancellations and vouchers (W1-W5) as users
meet them: a CX agent on the member page and the redemption list, a till through the
API. Each test fails on the code as audited and says which rule it holds."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.models import LedgerEntry
from points.services import adjust_points, record_return
from rewards.models import Redemption, Reward
from rewards.selectors import catalogue as catalogue_of
from rewards.services import redeem, use_voucher
from tests.conftest import summary

pytestmark = pytest.mark.django_db

LIST = "admin:rewards_redemption_changelist"


def available(member) -> int:
    return summary(member, now=timezone.now())["available"]


# W4 on the member page: a reason is something a reader can see (P6).


def test_W4_P6_a_cancellation_on_the_member_page_refuses_a_reason_of_invisible_characters(
    client, login, rich, catalogue, staff
):
    # given: a coffee voucher, and its cancel page open at the desk
    coffee = redeem(member=rich, reward=catalogue["Coffee voucher"], by=staff)
    login("CX agent")
    url = reverse("admin:members_member_cancel_redemption", args=[rich.pk, coffee.pk])
    token = client.get(url).context["form"]["token"].initial
    before = available(rich)

    # when: the "reason" is a zero-width space pasted from a chat (nothing to read)
    page = client.post(url, {"token": token, "reason": "\u200b"})

    # then: asked again, as for an empty reason; nothing refunded
    assert page.status_code == 200, page.get("Location")
    assert "Say why the redemption is cancelled." in page.content.decode()
    assert Redemption.objects.get(pk=coffee.pk).status == "redeemed"
    assert available(rich) == before
    assert not LedgerEntry.objects.filter(kind="refund").exists()


# W2: "Needs 1,200 more points" is what the member must still collect.


def test_W2_a_member_below_zero_is_told_how_many_points_they_really_need(member, buy, catalogue):
    # given: 200 points earned, a 150-point coffee redeemed, then the purchase returned
    # in full (P4: only a return takes the balance below zero): -150 available
    purchase = buy(member, "200", when=timezone.now() - timedelta(days=20))
    redeem(member=member, reward=catalogue["Coffee voucher"])
    record_return(
        member=member,
        amount=Decimal("200"),
        occurred_at=timezone.now() - timedelta(days=1),
        external_id="R-AUDIT-1",
        original_external_id=purchase.external_id,
    )
    assert available(member) == -150

    # when: the agent reads the catalogue to the customer
    fresh = Member.objects.get(pk=member.pk)
    reasons = {item.reward.name: item.locked_because for item in catalogue_of(fresh)}

    # then: the coffee (150) needs 300 more points, not 150: after earning 150 the
    # customer would still be at 0 and still refused
    assert reasons["Coffee voucher"] == "Needs 300 more points"


# The redemption list's actions act on what their confirmation page showed.


@pytest.fixture
def pens(member, staff):
    """101 redemptions of a 1-point pen: one more than the list's page of 100."""
    adjust_points(member=member, points=1_000, reason="Welcome", by=staff)
    pen = Reward.objects.create(name="Pen", points_cost=1)
    return [redeem(member=member, reward=pen, by=staff) for _ in range(101)]


def select_all(client):
    """What the browser sends after "Select all 101 redemptions": the page's boxes,
    and select_across."""
    page = client.get(reverse(LIST)).content.decode()
    on_page = re.findall(r'name="_selected_action" value="(\d+)"', page)
    assert len(on_page) == 100 and "Select all" in page
    return {ACTION_CHECKBOX_NAME: on_page, "select_across": "1", "index": "0"}


def confirmed_selection(page) -> dict:
    """What the confirmation page's own form sends back."""
    html = page.content.decode()
    return {
        ACTION_CHECKBOX_NAME: re.findall(r'name="_selected_action" value="(\d+)"', html),
        **{k: "1" for k in re.findall(r'name="(select_across)"', html)},
    }


def test_W5_marking_every_selected_voucher_used_uses_every_voucher_the_page_showed(
    client, login, pens
):
    # given: the agent selects all 101 vouchers of the list
    login("CX agent")
    chosen = select_all(client)

    # when: "Mark the selected vouchers used", then "Yes, mark used"
    asked = client.post(reverse(LIST), {**chosen, "action": "use"})
    shown = asked.content.decode().count('class="cx-code"')
    client.post(
        reverse(LIST),
        {**confirmed_selection(asked), "action": "use", "token": asked.context["token"]},
    )

    # then: every voucher the confirmation showed as "used once and for all" is used
    assert shown == 101
    assert Redemption.objects.filter(used_at__isnull=False).count() == 101


def test_W4_cancelling_every_selected_redemption_refunds_every_one_the_page_listed(
    client, login, member, pens
):
    # given: the agent selects all 101 redemptions of the list
    login("CX agent")
    chosen = select_all(client)
    before = available(member)

    # when: "Cancel and refund the selected redemptions", then the reason
    asked = client.post(reverse(LIST), {**chosen, "action": "cancel"})
    listed = asked.content.decode().count("Pen, 1 point,")
    client.post(
        reverse(LIST),
        {**confirmed_selection(asked), "action": "cancel", "reason": "Pens never sent"},
    )

    # then: each redemption the page said would be refunded is refunded
    assert listed == 101
    assert Redemption.objects.filter(status="cancelled").count() == 101
    assert available(member) == before + 101


# W4 on the member page: the page that asks why says what will happen.


def test_W4_the_cancel_page_of_a_voucher_used_meanwhile_does_not_promise_a_refund(
    client, login, rich, catalogue, staff
):
    # given: the agent's member page shows the voucher unused ("Cancel…"); meanwhile
    # the customer uses it at a till
    five = redeem(member=rich, reward=catalogue["5 euro voucher"], by=staff)
    login("CX agent")
    member_page = client.get(reverse("admin:members_member_change", args=[rich.pk]))
    assert "Cancel…" in member_page.content.decode()
    use_voucher(code=five.code, external_id="RECEIPT-7", channel="pos", store="STORE-07")

    # when: the agent clicks "Cancel…" on the page still open
    url = reverse("admin:members_member_cancel_redemption", args=[rich.pk, five.pk])
    page = client.get(url).content.decode()

    # then: told it cannot be (W5), not that "500 points come back ... available at once"
    assert "a used voucher cannot be cancelled" in page
    assert "points come back" not in page


# W4: the reason staff give is kept on the refund's ledger entry.


def test_W4_the_reason_the_agent_typed_is_kept_whole_on_the_refund_entry(
    client, login, rich, tiers, staff
):
    # given: a reward with a descriptive name, redeemed
    weekend = Reward.objects.create(
        name="Weekend in Seville for two: hotel, breakfast and a guided tour of the Alcazar",
        points_cost=100,
    )
    redemption = redeem(member=rich, reward=weekend, by=staff)
    login("CX agent")
    url = reverse("admin:members_member_cancel_redemption", args=[rich.pk, redemption.pk])
    token = client.get(url).context["form"]["token"].initial
    why = (
        "Customer phoned twice: the hotel in Seville had no booking under her name on the "
        "date of the voucher, and the tour company confirmed the tour was cancelled for all"
    )
    assert len(why) <= 200  # what the form accepts

    # when: cancelled with that reason (accepted by the form)
    done = client.post(url, {"token": token, "reason": why})

    # then: the refund's ledger entry keeps the reason the agent gave, whole
    assert done.status_code == 302
    refund = Redemption.objects.get(pk=redemption.pk).refund
    assert refund is not None
    assert why in refund.reason


def test_W4_W5_an_action_on_more_redemptions_than_a_page_can_list_is_refused_in_words(
    client, login, member, pens, monkeypatch
):
    # given: at most 100 redemptions per action (1,000 in the product)
    from rewards import admin as rewards_admin

    monkeypatch.setattr(rewards_admin, "ACTION_LIMIT", 100)
    login("CX agent")
    chosen = select_all(client)

    # when: the agent asks to cancel all 101
    page = client.post(reverse(LIST), {**chosen, "action": "cancel"}, follow=True)

    # then: told to narrow the list; nothing cancelled
    assert "Choose at most 100 redemptions at once" in page.content.decode()
    assert not Redemption.objects.filter(status="cancelled").exists()


def test_W4_a_reason_longer_than_the_refund_keeps_is_asked_again_on_the_list(
    client, login, member, pens
):
    # given
    login("CX agent")
    first = pens[0]

    # when: a reason of 201 characters, sent past the page's own limit
    page = client.post(
        reverse(LIST),
        {ACTION_CHECKBOX_NAME: [first.pk], "action": "cancel", "reason": "x" * 201},
    )

    # then: asked again, saying why; nothing cancelled
    assert "Keep the reason to 200 characters (it has 201)." in page.content.decode()
    assert Redemption.objects.get(pk=first.pk).status == "redeemed"
