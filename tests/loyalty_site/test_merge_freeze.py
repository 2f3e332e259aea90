"""M3 and G6: a freeze is the customer's, not one account's. The account kept carries
the later of both accounts' freezes, so the points and tier the duplicate's freeze
protected stay protected after the merge; the closed account's freeze ends with it."""

import re
import uuid
from datetime import date, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from members.services import merge_members
from points.expiry_selectors import cutoff_instant
from points.models import ExpiryPolicy, LedgerEntry
from points.services import adjust_points, expire_points
from points.services.freezing import freeze_member
from tests.loyalty_site.conftest import page, said
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


def freeze(member, staff, days, reason):
    """Frozen from today through `days` days from today."""
    until = timezone.localdate() + timedelta(days=days)
    return freeze_member(member=member, until=until, reason=reason, by=staff)


def day(days_from_today: int) -> str:
    return f"{timezone.localdate() + timedelta(days=days_from_today):%-d %b %Y}"


def month_end(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


@pytest.fixture
def monthly(db):
    """Monthly expiry from today."""
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()
    policy.save()
    return policy


def test_the_duplicates_freeze_goes_on_for_the_survivor_and_keeps_both_accounts_points(
    client_admin, keep, old, staff, monthly
):
    # given: M-OLD frozen for two months (Hospital stay), M-KEEP not frozen; 800 and
    # 300 points, to expire at this month's end
    adjust_points(member=old, points=800, reason="Welcome", by=staff)
    adjust_points(member=keep, points=300, reason="Welcome", by=staff)
    freeze(old, staff, 62, "Hospital stay")
    this_month = month_end(timezone.localdate())

    # when
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")

    # then: M-KEEP is frozen to the same last day, with the reason, as its page says
    survivor = Member.objects.get(pk=keep.pk)
    assert said(page(client_admin, keep), "frozen").startswith(
        f"Frozen until {day(62)}: Hospital stay"
    )
    assert survivor.freeze_reason == "Hospital stay"
    # and nothing expires at this month's end: the freeze skips the cutoff for both
    # accounts' points, now on one account
    expire_points(now=cutoff_instant(this_month) + timedelta(minutes=5))
    assert not LedgerEntry.objects.filter(kind="expiry", member=keep).exists()
    # and the closed account holds no freeze any more
    assert said(page(client_admin, old), "frozen") is None


@pytest.mark.parametrize("survivor_days, duplicate_days, kept", [(10, 40, 40), (40, 10, 40)])
def test_the_survivor_keeps_the_later_of_both_freezes(
    client_admin, keep, old, staff, survivor_days, duplicate_days, kept
):
    # given
    freeze(keep, staff, survivor_days, "Relocation" if survivor_days == kept else "Illness")
    freeze(old, staff, duplicate_days, "Relocation" if duplicate_days == kept else "Illness")

    # when
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")

    # then
    assert said(page(client_admin, keep), "frozen").startswith(
        f"Frozen until {day(kept)}: Relocation"
    )


def test_a_survivor_the_duplicates_freeze_carries_is_not_degraded_until_it_ends(
    keep, old, buy, staff, degradation
):
    # given: M-KEEP Silver, its last purchase 100 days ago (due for Bronze tonight);
    # M-OLD frozen for a month
    buy(keep, "1200", when=timezone.now() - timedelta(days=100))
    freeze(old, staff, 30, "Hospital stay")

    # when: merged, then tonight's degradation run
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")
    degrade_inactive_members(now=timezone.now() + timedelta(hours=1))

    # then: still Silver; inactivity counts again from the freeze's end
    survivor = Member.objects.get(pk=keep.pk)
    assert (survivor.qualified_tier.code, survivor.effective_tier.code) == ("silver", "silver")


def test_the_confirmation_says_the_freeze_goes_on_and_the_history_records_it(
    client, login, keep, old, staff
):
    # given
    login("CX agent")
    freeze(old, staff, 30, "Hospital stay")
    url = reverse("admin:members_member_merge", args=[keep.pk])
    form = {"merge-duplicate": "M-OLD", "merge-reason": "Card lost", "merge-token": uuid.uuid4()}

    # when
    html = client.post(url, form).content.decode()

    # then
    assert said_item(html, "merge-freeze") == (
        f"M-OLD is frozen until {day(30)} (Hospital stay): the freeze goes on for M-KEEP, "
        "which is not frozen."
    )

    # when: confirmed
    client.post(url, {**form, "_confirm": "1"})

    # then: M-KEEP's admin history says so
    history = LogEntry.objects.get(object_id=str(keep.pk), change_message__startswith="Merged")
    assert history.change_message.endswith(
        f"; M-OLD's freeze until {day(30)} (Hospital stay) goes on here."
    )


def said_item(html: str, element_id: str) -> str | None:
    found = re.search(rf'<li[^>]*id="{element_id}"[^>]*>(.*?)</li>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()) if found else None
