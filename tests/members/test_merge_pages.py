"""What agents read after a merge: the pages of the closed account and of the
survivor, a cancellation on the closed account's page, both admin histories."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from points.services import (
    adjust_points,
)
from rewards.services import redeem, use_voucher
from tests.conftest import (
    summary,
)
from tests.members.merging import merge

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("spent", [1_000, 0], ids=["silver", "bronze"])
def test_the_closed_account_s_page_says_its_points_moved_not_that_they_fell(
    client, login, keep, old, buy, staff, spent
):
    """Found by an audit: a Gold account merged away read "Bronze since today: accounts
    merged by agent: lifetime points fell below 1,000", as if the customer had lost them;
    and by a review: one at the entry tier read "joined the programme" (no tier moved)."""
    # given: a Silver (or Bronze) duplicate merged into the kept account
    if spent:
        buy(old, spent)
    merge(keep, old, staff)

    # when an agent opens the closed account
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[old.pk]))

    # then
    today = f"{timezone.localdate():%-d %b %Y}"
    assert page.context["tier_explanation"] == (
        f"Bronze since {today}: merged into another account by agent, its points moved there"
    )


def test_the_survivor_s_page_names_the_valid_vouchers_left_on_the_merged_account(
    client, login, keep, old, staff, catalogue
):
    """Found by an audit: vouchers stay where they are (M5), and an agent on the page of
    the account the customer uses saw none of them."""
    # given: the old account redeemed two coffees and a 5 euro voucher, one coffee used
    adjust_points(member=old, points=2_000, reason="Welcome", by=staff)
    coffee, five = catalogue["Coffee voucher"], catalogue["5 euro voucher"]
    used = redeem(member=old, reward=coffee)
    use_voucher(code=used.code, external_id="RECEIPT-1")
    redeem(member=old, reward=coffee)
    redeem(member=old, reward=five)
    merge(keep, old, staff)

    # when an agent opens the kept account
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[keep.pk])).content.decode()

    # then: the two valid ones are named, with the account that holds them
    text = " ".join(re.sub("<[^>]+>", "", page).split())
    assert (
        f"Also valid: 2 vouchers of {old.external_id}, merged into this account: use or "
        "cancel them from its page."
    ) in text


def test_cancelling_a_duplicates_redemption_on_its_page_names_the_survivor_refunded(
    client, login, keep, old, staff, catalogue
):
    # given: the old account redeemed a voucher, then was merged
    adjust_points(member=old, points=600, reason="Welcome", by=staff)
    redemption = redeem(member=old, reward=catalogue["5 euro voucher"], by=staff)
    merge(keep, old, staff)

    # when an agent cancels it on the old account's page
    login("CX agent")
    url = reverse("admin:members_member_cancel_redemption", args=[old.pk, redemption.pk])
    page = client.post(
        url,
        {"reason": "Never arrived", "token": "c0ffee00-0000-4000-8000-000000000001"},
        follow=True,
    )

    # then: the page and the survivor's admin history say where the points went
    assert summary(keep)["available"] == 600
    assert [str(m) for m in page.context["messages"]] == [
        "Cancelled the redemption of 5 euro voucher and refunded 500 points: Never arrived. "
        "M-KEEP now has 600 points available."
    ]
    assert LogEntry.objects.filter(
        object_id=str(keep.pk), change_message__startswith="Cancelled the redemption"
    ).exists()


def test_the_merge_is_in_both_members_admin_history_by_the_staff_user_with_the_reason(
    keep, old, buy, staff
):
    buy(old, "200")

    merge(keep, old, staff, reason="Card lost and re-issued")

    for member, words in ((old, "Merged into M-KEEP"), (keep, "Merged M-OLD into this member")):
        entry = LogEntry.objects.get(object_id=str(member.pk), content_type__model="member")
        assert entry.user == staff
        assert words in entry.change_message and "Card lost and re-issued" in entry.change_message
        assert "200 available" in entry.change_message
