"""M8: a merge's tier changes as the brand's systems hear them."""

import pytest

from core.events import EventType
from members.services import merge_members
from tests.api.test_webhooks import send, subscribe, verified

pytestmark = pytest.mark.django_db


def test_M8_both_accounts_tier_changes_are_sent_with_the_reason_merge(
    receiver, make_member, buy, staff
):
    # given two Silver accounts of one customer (2,000 lifetime points each), and an
    # endpoint for tier changes
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    buy(keep, 2000)
    buy(old, 2000)
    endpoint = subscribe(receiver, EventType.MEMBER_TIER_CHANGED)

    # when the duplicate is merged into the account kept
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")
    send(endpoint)

    # then the duplicate goes back to the entry tier, the survivor to the tier both
    # accounts' points reach (4,000: Gold), each told with the reason "merge"
    events = [event["data"] for event in verified(receiver, endpoint)]
    assert [data["reason"] for data in events] == ["merge", "merge"]
    heard = {d["member"]: (d["from_tier"]["code"], d["to_tier"]["code"]) for d in events}
    assert heard == {"M-KEEP": ("silver", "gold"), "M-OLD": ("silver", "bronze")}
