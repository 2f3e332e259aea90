"""Audit of the governance of manual points (goodwill limits and point requests, status
match, freeze): defects a user hits, each as a failing test named after the rule it
protects (DESIGN.md "Governance of manual points", docs/rules.md G1-G7, T2, X2, E3-E4)."""

import re
import threading
import uuid
from datetime import date, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Notification
from members.services import merge_members
from members.tasks import send_notifications_task
from points.expiry_selectors import cutoff_dates
from points.models import AdjustmentRequest, ExpiryPolicy
from points.selectors import balances_and_stake, programme
from points.services import adjust_points, merging, send_expiry_reminders
from points.services.freezing import freeze_member
from points.services.goodwill import adjust_or_request
from tests.conftest import at, definition, postgres_only, run_together, summary
from tiers.services import degrade_inactive_members, grant_status

pytestmark = pytest.mark.django_db


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def paragraph(text: str, element_id: str) -> str:
    """The text of the member page's <p id=...>, tags removed, spaces tidied."""
    found = re.search(rf'<p[^>]*id="{element_id}"[^>]*>(.*?)</p>', text, re.S)
    assert found, f"no paragraph {element_id} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


@pytest.fixture
def monthly_from_march(db):
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 3, 1)
    policy.save()
    return policy


# Status match (G5) and the tier-up message (T2)


def test_G5_T2_a_member_matched_gold_who_reaches_silver_by_points_is_not_told_they_reached_gold(
    make_member, buy, tiers, staff
):
    # given: Bronze by points, Gold by status match until 30 April
    member = make_member(joined_at=at("2026-01-01"))
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=date(2026, 4, 30),
        reason="Gold card of a competitor",
        by=staff,
        now=at("2026-01-02"),
    )
    send_notifications_task.delay()
    sent = len(mail.outbox)
    # when: a purchase of 1,200 (x2 at Gold: 2,400 lifetime points) reaches Silver by points
    buy(member, "1200", when=at("2026-01-10"))
    send_notifications_task.delay()
    # then: the member reached Silver (its bonus, 100), not Gold: the match still ends on
    # 30 April ("a granted tier ... does not count as reached")
    assert summary(member)["qualified_tier"].code == "silver"
    (message,) = mail.outbox[sent:]
    assert "You have reached Gold" not in message.body, message.body
    assert "Silver" in message.subject, message.subject
    assert (
        "You have reached Silver. Your Gold status match goes on until its last day; then "
        "your purchases earn 1.5 times the points, as Silver."
    ) in " ".join(message.body.split())


def test_T2_a_degraded_member_lifted_to_gold_by_a_goodwill_adjustment_is_told_gold_not_bronze(
    make_member, buy, staff, degradation
):
    # given: Silver by points, degraded to Bronze after 90 days without a purchase
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1000", when=at("2026-01-01"))
    degrade_inactive_members(now=at("2026-04-15"))
    assert Member.objects.get(pk=member.pk).effective_tier.code == "bronze"
    send_notifications_task.delay()
    sent = len(mail.outbox)
    # when: an agent gives 2,000 tier-counting goodwill points: 3,100 lifetime, Gold
    adjust_points(
        member=member,
        points=2000,
        reason="Goodwill: flight cancelled",
        by=staff,
        definition=definition("goodwill-tier-points"),
        now=at("2026-04-20"),
    )
    send_notifications_task.delay()
    # then: the tier-up message is about Gold, the tier reached, with Gold's bonus (250);
    # it does not welcome the member to Bronze, their tier since April
    assert summary(member)["qualified_tier"].code == "gold"
    (message,) = mail.outbox[sent:]
    assert "You have reached Bronze" not in message.body, message.body
    assert message.subject.startswith("Welcome to Gold"), message.subject
    assert (
        "You have reached Gold. Gold is yours from your next purchase, which already earns "
        "twice the points."
    ) in " ".join(message.body.split())


def test_X2_G5_the_tier_panel_of_a_matched_member_who_then_reaches_silver_names_the_status_match(
    client, login, make_member, buy, tiers, staff
):
    # given: Gold by status match since 20 days ago; a purchase 10 days ago reached Silver
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=30))
    matched = now - timedelta(days=20)
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=timezone.localdate() + timedelta(days=60),
        reason="Gold card of a competitor",
        by=staff,
        now=matched,
    )
    buy(member, "1200", when=now - timedelta(days=10))
    # when
    login("CX agent")
    text = client.get(member_page(member)).content.decode()
    # then: the member is Gold by the match since it was granted, not "since" the
    # purchase, and no merge's match "carries on"
    why = paragraph(text, "tier-why")
    assert "carries on" not in why, why
    assert f"Gold from {timezone.localtime(matched):%-d %b %Y}: status match by agent" in why, why


def test_G5_the_degradation_line_of_a_member_matched_above_the_entry_tier_is_not_lowest_tier(
    client, login, member, tiers, staff, degradation
):
    # given: Bronze by points, Gold by status match for 60 days, degradation switched on
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=timezone.localdate() + timedelta(days=60),
        reason="Gold card of a competitor",
        by=staff,
    )
    # when
    login("CX agent")
    text = client.get(member_page(member)).content.decode()
    # then: the page shows a Gold member; it must not also say they are at the lowest tier
    assert 'id="effective-tier">Gold' in text
    line = paragraph(text, "degradation-status")
    assert "At the lowest tier" not in line, line


# Status match and expiry reminders (E3, E4)


def test_E4_G5_a_member_whose_match_ends_before_the_cutoff_is_reminded_on_the_reminder_day(
    make_member, buy, tiers, staff, monthly_from_march
):
    # given: Silver by points with 1,300 points, Gold by status match until 20 March
    member = make_member(joined_at=at("2026-03-01"))
    buy(member, "1200", when=at("2026-03-01"))
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=date(2026, 3, 20),
        reason="Gold card of a competitor",
        by=staff,
        now=at("2026-03-02"),
    )
    # the member page and the API already say the points expire at the end of 31 March
    # (E3: "Gold by a match until 20 March: the Silver points expire on 31 March")
    _, cutoff, at_stake = balances_and_stake(
        Member.objects.get(pk=member.pk), programme(), now=at("2026-03-17")
    )
    assert (cutoff, at_stake) == (date(2026, 3, 31), 1300)
    # when: the reminders' run of 17 March, 14 days before the cutoff
    send_expiry_reminders(now=at("2026-03-17", 9))
    # then: the member is reminded of the 1,300 points, as the page says (E4)
    reminders = Notification.objects.filter(member=member, kind="expiry_reminder")
    assert reminders.count() == 1


# Freeze (G6)


def test_G6_the_points_panel_of_a_frozen_member_still_says_when_points_expire(
    client, login, make_member, buy, staff
):
    # given: a monthly expiry from today; a Bronze member with 500 points, frozen 40 days
    today = timezone.localdate()
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", today
    policy.save()
    member = make_member()
    buy(member, "500", when=timezone.now())
    last_day = today + timedelta(days=40)
    freeze_member(member=member, until=last_day, reason="Hospital stay", by=staff)
    after = cutoff_dates("monthly", last_day + timedelta(days=1), last_day + timedelta(days=62))[0]
    # when
    login("CX agent")
    text = client.get(member_page(member)).content.decode()
    # then: the points panel says something about expiry (the points wait for the next
    # cutoff after the freeze, when block expiry takes them: "500 points expire on ...");
    # it is not left empty
    line = paragraph(text, "next-expiry")
    assert line, "the points panel says nothing about expiry for a frozen member"
    assert line == f"500 points expire on {after:%-d %b %Y} unless spent before.", line


# Point requests (G3)


def test_G3_P6_an_approval_reason_of_invisible_characters_is_no_reason(
    client, login, member, maria, limits
):
    # given
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")
    # when: the supervisor approves with a zero-width space as the reason
    client.post(
        reverse("admin:approvals"),
        {"request": made.pk, "decision": "approve", "reason": "\u200b"},
        follow=True,
    )
    # then: approved, with no reason recorded (P6: invisible characters are no reason)
    made = AdjustmentRequest.objects.get(pk=made.pk)
    assert made.status == "approved"
    assert made.decision_reason == "", repr(made.decision_reason)
    history = LogEntry.objects.get(object_id=str(member.pk), user__username="cx-supervisor")
    assert history.get_change_message() == (
        "Approved the request of maria for +2,500 points: no reason given"
    )


# Point requests and merges (G3, M5): concurrency, PostgreSQL only


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_G3_M5_a_request_sent_while_the_account_is_being_merged_does_not_stay_on_the_closed_account(
    make_member, limits, staff, django_user_model, monkeypatch
):
    # given: an agent whose limit is 1,000 points per adjustment
    agent = django_user_model.objects.create_user("maria", is_staff=True)
    agent.groups.add(Group.objects.get(name="CX agent"))
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    moved, sent = threading.Event(), threading.Event()
    drop_unsent = merging.drop_unsent

    def slowly(*args, **kwargs):
        moved.set()  # the merge has moved M-OLD's waiting requests, not yet committed
        sent.wait(3)
        return drop_unsent(*args, **kwargs)

    monkeypatch.setattr(merging, "drop_unsent", slowly)

    # when: another agent merges M-OLD into M-KEEP while the first asks +2,500 for M-OLD
    # (the POST read M-OLD before the merge committed, as the page does)
    def work(i):
        if i == 0:
            return merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")
        moved.wait(10)
        seen = Member.objects.get(pk=old.pk)
        try:
            return adjust_or_request(member=seen, points=2500, reason="Lost parcel", by=agent)
        finally:
            sent.set()

    merged, made = run_together(2, work)

    # then: the merge is made; the request is refused naming M-KEEP, or waits on M-KEEP
    # (M4: a closed account is adjusted no more; M5: its requests go to the account kept)
    assert isinstance(merged, Member), merged
    stranded = AdjustmentRequest.objects.filter(member=old, status="pending")
    assert not stranded.exists(), "a point request waits on the closed account M-OLD"


def test_G3_a_rejection_reason_too_long_is_refused_naming_its_length(
    client, login, member, maria, limits
):
    # given
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")

    # when: a reason of 300 characters, sent past the page's own limit
    page = client.post(
        reverse("admin:approvals"),
        {"request": made.pk, "decision": "reject", "reason": "x" * 300},
        follow=True,
    )

    # then: refused, saying why; the request still waits
    assert "Keep the reason to 255 characters (it has 300)." in page.content.decode()
    assert AdjustmentRequest.objects.get(pk=made.pk).status == "pending"


def test_G3_the_dashboard_says_more_than_100_requests_wait(client, login, member, maria, limits):
    # given: 101 requests waiting
    first = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    AdjustmentRequest.objects.bulk_create(
        AdjustmentRequest(
            member=member,
            points=2500,
            reason="Lost parcel",
            requested_by=maria,
            definition=first.definition,
        )
        for _ in range(100)
    )
    login("CX supervisor")

    # when
    page = client.get(reverse("admin:index")).content.decode()

    # then
    assert "More than 100 waiting for approval" in page


def test_G_a_request_rejected_by_its_member_s_erasure_names_no_decider_and_says_why(
    client, login, member, maria, limits, admin_user
):
    """Found by an audit: the queue read "Rejected by None", a supervisor's late approval
    "already rejected by None", and the member page gave the limit as the reason."""
    from members.services import erase_member

    # given: a request waiting, then the member erased
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    erase_member(member=member, by=admin_user)
    # when: a supervisor opens the queue, then approves from a page read before
    login("CX supervisor")
    queue = client.get(reverse("admin:approvals")).content.decode()
    late = client.post(
        reverse("admin:approvals"), {"request": made.pk, "decision": "approve"}, follow=True
    ).content.decode()
    # then
    erased = "The member was erased at their request: their points can never be used."
    assert f"Rejected automatically: {erased}" in queue and "None" not in queue
    assert "This request was already rejected automatically on " in late
    client.force_login(admin_user)
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "Rejected</strong> automatically on " in page and erased in page


def test_G_asking_who_approves_costs_the_same_queries_however_many_supervisors(
    client, login, member, limits, django_user_model
):
    """Found by an audit: one query per CX supervisor for each request sent."""
    supervisors = Group.objects.get(name="CX supervisor")
    login("CX agent")
    url = reverse("admin:members_member_assign_points", args=[member.pk])
    definition = client.get(member_page(member)).context["assign_form"]["definition"].initial

    def send() -> int:
        fields = {"points": "2500", "reason": "Lost parcel", "token": uuid.uuid4()}
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                url, fields | {"definition": getattr(definition, "pk", definition)}
            )
        assert response.status_code == 302
        return len(queries)

    django_user_model.objects.create_user("sup-0", is_staff=True).groups.add(supervisors)
    few = send()
    for i in range(1, 30):
        django_user_model.objects.create_user(f"sup-{i}", is_staff=True).groups.add(supervisors)
    assert send() == few
    assert AdjustmentRequest.objects.filter(member=member).count() == 2
