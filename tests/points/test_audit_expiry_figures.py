"""What the member page and the API say will expire, against what the expiry job then
takes (E2, E3)."""

import re
from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api.views.common import summary as api_summary
from members.models import Member
from points.models import ExpiryPolicy, LedgerEntry
from points.selectors import programme
from points.services import expire_points
from tiers.models import Tier
from tiers.services import grant_status

pytestmark = pytest.mark.django_db


def set_expiry(cycle, starts_on):
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = cycle, starts_on
    policy.save()


def taken(member):
    """The expiry entries the job wrote for the member: [(cutoff, points)]."""
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry")
        .order_by("cutoff")
        .values_list("cutoff", "points")
    )


def read(member, now):
    """GET /api/v1/members/{code} as a till reads it at `now`."""
    return api_summary(Member.objects.get(pk=member.pk), programme(), now=now)


def next_expiry_text(client, member) -> str:
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    found = re.search(r'<p id="next-expiry">(.*?)</p>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_E3_between_a_cutoff_and_its_run_the_member_page_reads_the_tier_then(
    client, login, make_member, buy, staff
):
    # given: monthly expiry; the cutoff at the end of last month has passed and its job
    # has not run yet; a Silver member had 1,200 points then, and is Gold (whose points
    # never expire) by a status match given after the cutoff
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    set_expiry("monthly", cutoff.replace(day=1))
    member = make_member("M-S", joined_at=timezone.now() - timedelta(days=90))
    buy(member, "1100", when=timezone.make_aware(datetime.combine(cutoff, time(9))))
    grant_status(
        member=member,
        tier=Tier.objects.get(code="gold"),
        until=today + timedelta(days=60),
        reason="Competitor card",
        by=staff,
    )
    till = read(member, timezone.now())["next_expiry"]
    login("CX agent")

    # when: an agent opens the member page before the job runs, then the job runs
    shown = next_expiry_text(client, member)
    expire_points()

    # then: the page said what the API said and what the job took (the Silver points of
    # the cutoff), not that Gold points never expire
    assert till == {"cutoff": cutoff, "points": 1200}
    assert taken(member) == [(cutoff, -1200)]
    assert shown == f"1,200 points expire on {cutoff:%-d %b %Y} unless spent before."
