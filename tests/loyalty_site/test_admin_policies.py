"""The programme's policies in the plain admin: the expiry preview, the policies on
their single row, expiry switched on, and a campaign limited to tiers and channels."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_expiry_preview_page_shows_the_next_cutoff_and_who_loses_what(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    from points.models import ExpiryPolicy

    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()
    policy.save()
    members = [make_member() for _ in range(60)]
    for m in members:
        buy(m, "120", when=timezone.now() - timedelta(days=1))
    with django_assert_max_num_queries(16):
        page = client_admin.get(reverse("admin:points_expirypolicy_preview"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Next cutoff: end of" in html
    assert "<strong>60</strong> members, <strong>7,200</strong> points at stake" in html
    assert "Page 1 of 2" in html


def test_the_expiry_preview_lists_the_largest_stakes_and_counts_every_member(
    client_admin, make_member, buy, monkeypatch
):
    # given: five members at stake, the page listing the three largest
    from points import expiry_selectors
    from points.models import ExpiryPolicy

    monkeypatch.setattr(expiry_selectors, "PREVIEW_LARGEST", 3)
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()
    policy.save()
    for n, amount in enumerate(["10", "50", "30", "40", "20"]):
        buy(make_member(f"M-{n}"), amount, when=timezone.now() - timedelta(days=1))

    # when
    html = client_admin.get(reverse("admin:points_expirypolicy_preview")).content.decode()

    # then: every member counted, the three largest listed, largest first
    assert "<strong>5</strong> members, <strong>150</strong> points at stake" in html
    assert "The 3 who would lose most" in html
    listed = re.findall(r">(M-\d)</a>", html)
    assert listed == ["M-1", "M-3", "M-2"]


def test_policies_open_on_their_single_row(client_admin, db):
    page = client_admin.get(reverse("admin:tiers_degradationpolicy_changelist"))
    assert page.status_code == 302 and page.url.endswith("/1/change/")
    page = client_admin.get(reverse("admin:points_expirypolicy_changelist"), follow=True)
    assert b"Preview the next expiry" in page.content


def test_switching_expiry_on_in_the_admin_starts_today(client_admin, db):
    from django.utils import timezone

    from points.models import ExpiryPolicy

    policy = ExpiryPolicy.current()
    url = reverse("admin:points_expirypolicy_change", args=[policy.pk])
    posted = {"cycle": "quarterly", "starts_on": "", "reminder_days": "14"}
    shown = client_admin.post(url, posted).context["fingerprint"]
    response = client_admin.post(url, {**posted, "_confirm_policy": shown})
    assert response.status_code == 302, response.content
    assert ExpiryPolicy.current().starts_on == timezone.localdate()


def test_a_marketer_limits_a_campaign_to_tiers_and_channels(client_admin, tiers):
    from points.models import Campaign

    response = client_admin.post(
        reverse("admin:points_campaign_add"),
        {
            "name": "Gold online week",
            "multiplier": "3",
            "starts_at_0": "2026-03-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2026-03-08",
            "ends_at_1": "00:00:00",
            "tiers": [tiers["gold"].pk],
            "channels": ["ecommerce"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    campaign = Campaign.objects.get(name="Gold online week")
    assert campaign.channels == ["ecommerce"]
    assert list(campaign.tiers.values_list("code", flat=True)) == ["gold"]
