"""Governance in the CX Manager: requests above a goodwill limit on the member page,
the supervisors' queue, status match and freeze forms, the limits' admin."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from members.services import merge_members
from points.models import AdjustmentLimit, AdjustmentRequest, LedgerEntry
from points.services.goodwill import adjust_or_request
from tests.conftest import summary
from tests.loyalty_site.cx_pages import assign, member_page
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def test_an_agent_above_the_limit_sees_the_request_and_its_state_on_the_member_page(
    client, login, member, limits
):
    # given
    login("CX agent")
    # when
    response = assign(client, member, 2500)
    # then
    page = client.get(response.url)
    text = page.content.decode()
    assert (
        "Sent for approval: +2,500 points is above the limit of 1,000 points per adjustment" in text
    )
    # (no CX supervisor yet: the agent is told who decides)
    assert "No other user may approve requests: a superuser approves or rejects it" in text
    assert 'id="point-requests"' in text and "Waiting for approval" in text
    assert summary(member)["available"] == 0


def test_the_queue_is_for_supervisors_only(client, login):
    login("CX agent")
    assert client.get(reverse("admin:approvals")).status_code == 403
    assert client.post(reverse("admin:approvals"), {}).status_code == 403


def test_the_list_of_all_requests_leads_a_supervisor_to_the_queue(client, login):
    login("CX supervisor")
    page = client.get(reverse("admin:points_adjustmentrequest_changelist")).content.decode()
    assert f'<a href="{reverse("admin:approvals")}">point requests to approve</a>' in page


def test_a_supervisor_approves_from_the_queue_and_the_agent_reads_the_decision(
    client, login, member, maria, limits
):
    # given
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")
    queue = client.get(reverse("admin:approvals"))
    assert f'id="request-{made.pk}"' in queue.content.decode()
    # when
    response = client.post(
        reverse("admin:approvals"),
        {"request": made.pk, "decision": "approve", "reason": "Checked the carrier"},
        follow=True,
    )
    # then
    assert f"Approved: +2,500 points for {member.external_id} asked by maria" in (
        response.content.decode()
    )
    assert summary(member)["available"] == 2500
    page = client.get(member_page(member)).content.decode()
    assert "Approved</strong> by cx-supervisor" in page and "Checked the carrier" in page
    assert "Adjusted by maria, approved by cx-supervisor: Lost parcel" in page
    # the member's admin history names the supervisor and the decision
    history = LogEntry.objects.get(object_id=str(member.pk), user__username="cx-supervisor")
    assert history.get_change_message() == (
        "Approved the request of maria for +2,500 points: Checked the carrier"
    )
    # and sending the decision again applies nothing twice
    again = client.post(
        reverse("admin:approvals"), {"request": made.pk, "decision": "approve"}, follow=True
    )
    assert "already approved by cx-supervisor" in again.content.decode()
    assert LedgerEntry.objects.filter(member=member, kind="adjustment").count() == 1


def test_a_reason_the_database_cannot_keep_is_named_and_the_request_stays_waiting(
    client, login, member, maria, limits
):
    # given
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")
    # when: a NUL character in the reason (a paste from another program)
    response = client.post(
        reverse("admin:approvals"),
        {"request": made.pk, "decision": "approve", "reason": "Checked\x00"},
        follow=True,
    )
    # then: the reason is named, not the request; nothing decided
    assert "Reason: Null characters are not allowed." in response.content.decode()
    made.refresh_from_db()
    assert made.status == "pending" and summary(member)["available"] == 0


def test_the_queue_says_which_requests_are_above_the_supervisors_own_limit(
    client, login, member, maria, limits
):
    # given: 50,000 asked; supervisors give up to 10,000 in one adjustment
    AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX supervisor"), per_adjustment=10_000, per_month=100_000
    )
    made = adjust_or_request(member=member, points=50_000, reason="Lost parcel", by=maria)
    login("CX supervisor")

    # when
    queue = client.get(reverse("admin:approvals")).content.decode()
    row = queue.split(f'id="request-{made.pk}"')[1].split("</tr>")[0]
    response = client.post(
        reverse("admin:approvals"), {"request": made.pk, "decision": "approve"}, follow=True
    )

    # then: no Approve button, the reason instead; approving anyway gives nothing
    assert 'value="approve"' not in row
    assert "50,000 points is above your own limit of 10,000 per adjustment" in row
    assert "above your own limit" in response.content.decode()
    assert summary(member)["available"] == 0


def test_a_rejection_without_a_reason_is_refused_on_the_queue(client, login, member, maria, limits):
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")
    response = client.post(
        reverse("admin:approvals"), {"request": made.pk, "decision": "reject"}, follow=True
    )
    # (naming the request: a member may have several waiting)
    assert (
        f"{member.external_id}, +2,500 points asked by maria: Say why the request is rejected"
        in response.content.decode()
    )
    assert AdjustmentRequest.objects.get(pk=made.pk).status == "pending"


def test_the_queue_reads_a_bounded_number_of_queries(
    client, login, make_member, maria, limits, django_assert_max_num_queries
):
    for _ in range(30):
        adjust_or_request(member=make_member(), points=2500, reason="Outage", by=maria)
    login("CX supervisor")
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:approvals"))
    assert page.content.decode().count('name="decision" value="approve"') == 30


def test_the_member_page_shows_a_status_match_until_its_last_day(client, login, member):
    # given
    login("CX supervisor")
    until = timezone.localdate() + timedelta(days=60)
    page = client.get(member_page(member))
    gold = page.context["match_form"].fields["tier"].queryset.get(code="gold")
    # when
    client.post(
        reverse("admin:members_member_status_match", args=[member.pk]),
        {
            "match-tier": gold.pk,
            "match-until": until.isoformat(),
            "match-reason": "Gold card of a competitor",
            "match-token": uuid.uuid4(),
        },
    )
    # then
    text = client.get(member_page(member)).content.decode()
    assert f"Gold by status match until {until:%-d %b %Y}" in text
    assert 'id="effective-tier">Gold' in text
    # the progress is to a tier of the member's own points, not to the one they have
    assert '<p id="to-next-tier">1,000 points to qualify for Silver by points</p>' in text


def test_agents_neither_grant_status_nor_freeze(client, login, member):
    login("CX agent")
    page = client.get(member_page(member)).content.decode()
    assert 'id="status-match-form"' not in page and 'id="freeze-form"' not in page
    for name in ("members_member_status_match", "members_member_freeze"):
        assert client.post(reverse(f"admin:{name}", args=[member.pk]), {}).status_code == 403


def test_a_freeze_shows_on_the_member_page_with_its_reason(client, login, member):
    login("CX supervisor")
    until = timezone.localdate() + timedelta(days=30)
    client.post(
        reverse("admin:members_member_freeze", args=[member.pk]),
        {
            "freeze-until": until.isoformat(),
            "freeze-reason": "Illness",
            "freeze-token": uuid.uuid4(),
        },
    )
    text = client.get(member_page(member)).content.decode()
    assert f"Frozen until {until:%-d %b %Y}</strong>: Illness" in text


def test_goodwill_limits_are_edited_by_superusers_only(client, login, admin_client):
    login("CX supervisor")
    assert client.get(reverse("admin:points_adjustmentlimit_changelist")).status_code == 403
    assert admin_client.get(reverse("admin:points_adjustmentlimit_add")).status_code == 200


def test_a_status_match_offers_only_the_tiers_above_the_qualified_one(client, login, member, buy):
    buy(member, "1200")  # Silver
    login("CX supervisor")
    page = client.get(member_page(member))
    offered = [tier.code for tier in page.context["match_form"].fields["tier"].queryset]
    assert offered == ["gold", "platinum"]
    assert page.context["match_form"].fields["tier"].empty_label  # none chosen for the agent


def test_a_status_match_refused_is_shown_again_offering_only_the_tiers_above(
    client, login, member, buy
):
    # given: a Silver member
    buy(member, "1200")
    login("CX supervisor")
    gold = Tier.objects.get(code="gold")

    # when: a match to Gold whose last day has passed is refused
    page = client.post(
        reverse("admin:members_member_status_match", args=[member.pk]),
        {
            "match-tier": gold.pk,
            "match-until": "2020-01-01",
            "match-reason": "Gold card of a competitor",
            "match-token": uuid.uuid4(),
        },
    )

    # then: the form, shown again with the error, offers what it offered first
    form = page.context["match_form"]
    assert form.errors
    assert [tier.code for tier in form.fields["tier"].queryset] == ["gold", "platinum"]


def test_a_request_still_waiting_shows_on_the_member_page_however_many_came_after(
    client, login, member, maria, limits, django_user_model
):
    # given: an old request still waiting, then 10 newer ones, rejected
    from points.services.goodwill import reject_request

    waiting = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    AdjustmentRequest.objects.filter(pk=waiting.pk).update(
        requested_at=timezone.now() - timedelta(days=30)
    )
    sam = login("CX supervisor")
    for i in range(10):
        made = adjust_or_request(member=member, points=2000 + i, reason="Again", by=maria)
        reject_request(request=made, by=sam, reason="Already given")

    # when
    page = client.get(member_page(member)).content.decode()

    # then: the waiting one is on the page, with the latest decided ones
    assert "2,500 pts" in page
    assert page.count("Rejected") == 9


def test_the_request_list_finds_the_requests_of_a_merged_code(
    client, login, make_member, maria, limits, staff
):
    # given: a request waiting on M-OLD, then M-OLD merged into M-KEEP (the request moves)
    from members.services import merge_members

    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    made = adjust_or_request(member=old, points=2500, reason="Lost parcel", by=maria)
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")
    login("CX supervisor")

    # when: the list is searched by the code the customer gives, M-OLD
    page = client.get(reverse("admin:points_adjustmentrequest_changelist"), {"q": "M-OLD"})

    # then: the request is found, now on M-KEEP
    assert [row.pk for row in page.context["cl"].result_list] == [made.pk]


# A form sent from a page opened before the account was merged: the page offers no status
# match or freeze for a closed account, so the refusal is said above it, not dropped.


@pytest.mark.parametrize("form", ["status_match", "freeze"])
def test_a_status_match_or_freeze_sent_for_a_merged_account_says_why_it_was_refused(
    client, login, make_member, staff, form
):
    # given: M-OLD merged into M-KEEP after the supervisor opened M-OLD's page
    login("CX supervisor")
    old, keep = make_member("M-OLD"), make_member("M-KEEP")
    gold = Tier.objects.get(code="gold")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")
    until = timezone.localdate() + timedelta(days=30)
    prefix = "match" if form == "status_match" else "freeze"

    # when
    response = client.post(
        reverse(f"admin:members_member_{form}", args=[old.pk]),
        {
            f"{prefix}-tier": gold.pk,
            f"{prefix}-until": until.isoformat(),
            f"{prefix}-reason": "Asked by phone",
            f"{prefix}-token": uuid.uuid4(),
        },
        follow=True,
    )

    # then: the member page, saying the account is closed and which to use
    said = [str(message) for message in response.context["messages"]]
    assert any("M-OLD" in message and "M-KEEP" in message for message in said), said
    keep.refresh_from_db()
    assert (keep.granted_tier_id, keep.frozen_until) == (None, None)


def test_a_limit_per_adjustment_above_the_month_s_is_refused_naming_it(admin_client):
    page = admin_client.post(
        reverse("admin:points_adjustmentlimit_add"),
        {"group": Group.objects.get(name="CX agent").pk, "per_adjustment": 5000, "per_month": 100},
    )

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "per_adjustment": [
            "At most the month's 100: one adjustment above it goes for approval anyway."
        ]
    }
    assert not AdjustmentLimit.objects.exists()


@pytest.mark.parametrize("typed", ["0", "-1"])
def test_a_limit_below_one_point_is_refused_with_the_one_bound(admin_client, typed):
    page = admin_client.post(
        reverse("admin:points_adjustmentlimit_add"),
        {"group": Group.objects.get(name="CX agent").pk, "per_adjustment": typed, "per_month": 1},
    )

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "per_adjustment": ["Ensure this value is greater than or equal to 1."]
    }
    assert not AdjustmentLimit.objects.exists()


@pytest.mark.parametrize(
    "per_adjustment, per_month, errors",
    [
        (
            "2147483648",
            "2147483648",
            {
                "per_adjustment": [
                    "At most 100,000: no adjustment may give more points than that (P6)."
                ],
                "per_month": ["At most 1,000,000,000 points a month."],
            },
        ),
        (
            "1" * 20,
            "1000",
            {
                "per_adjustment": [
                    "At most 100,000: no adjustment may give more points than that (P6)."
                ]
            },
        ),
    ],
)
def test_a_limit_above_what_any_adjustment_may_give_is_refused_in_words(
    admin_client, per_adjustment, per_month, errors
):
    page = admin_client.post(
        reverse("admin:points_adjustmentlimit_add"),
        {
            "group": Group.objects.get(name="CX agent").pk,
            "per_adjustment": per_adjustment,
            "per_month": per_month,
        },
    )

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == errors
    assert not AdjustmentLimit.objects.exists()


def test_a_request_above_every_supervisor_s_own_limit_tells_the_agent_a_superuser_decides(
    client, login, member, limits, django_user_model
):
    """Found by a walkthrough: the agent was told a CX supervisor decides, and the
    supervisor's queue offered no Approve (above their own limit of 10,000)."""
    supervisors = Group.objects.get(name="CX supervisor")
    AdjustmentLimit.objects.create(group=supervisors, per_adjustment=10_000, per_month=50_000)
    django_user_model.objects.create_user("sam", is_staff=True).groups.add(supervisors)
    login("CX agent")

    within = client.get(assign(client, member, 2500).url).content.decode()
    beyond = client.get(assign(client, member, 20_000).url).content.decode()

    assert "per adjustment. A CX supervisor approves or rejects it; nothing is" in within
    assert (
        "It is above every CX supervisor&#x27;s own limit per adjustment: a superuser "
        "approves or rejects it; nothing is given until then" in beyond
    )
