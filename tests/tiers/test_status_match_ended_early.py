"""G5: a status match ended early by a CX supervisor (given to the wrong member, say),
on the member page: the member goes back to the tier the rules give, as when its last
day passes, recorded, sent and told."""

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from core import events
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Member, Notification, TierChange
from members.services import send_pending_notifications
from tests.conftest import at
from tiers.models import ProgrammeVersion, StatusGrant, Tier
from tiers.services import degrade_inactive_members, end_status_match, grant_status

pytestmark = pytest.mark.django_db

START = at("2026-01-01")


def tiers_of(member):
    m = Member.objects.get(pk=member.pk)
    return m.qualified_tier.code, m.effective_tier.code


@pytest.fixture
def matched(make_member, buy, tiers, staff):
    """Silver by points (a purchase on 1 January), Gold by status match until 30 April."""
    member = make_member(joined_at=START - timedelta(days=1))
    buy(member, "1000", when=START)
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=date(2026, 4, 30),
        reason="Gold card of a competitor",
        by=staff,
        now=START,
    )
    return member


def test_ending_a_match_early_gives_the_tier_the_rules_give_and_says_who_and_why(matched, staff):
    # when
    grant = end_status_match(
        member=matched, reason="Granted to the wrong member", by=staff, now=at("2026-02-01")
    )
    # then: Silver again, recorded and told; the match says how it ended
    assert tiers_of(matched) == ("silver", "silver")
    assert (grant.end, grant.ended_by, grant.end_reason) == (
        "ended",
        staff,
        "Granted to the wrong member",
    )
    change = TierChange.objects.filter(member=matched).latest("pk")
    assert (change.reason, change.from_tier.code, change.to_tier.code, change.created_by) == (
        "status_match_ended",
        "gold",
        "silver",
        staff,
    )
    assert Notification.objects.filter(member=matched, kind="status_match_ended").count() == 1
    assert Member.objects.get(pk=matched.pk).granted_tier is None
    # and the nightly job, on the match's last day, ends nothing more
    degrade_inactive_members(now=at("2026-05-01", 3))
    assert TierChange.objects.filter(member=matched, reason="status_match_ended").count() == 1


def test_a_match_ended_early_drops_by_inactivity_as_the_nightly_job_would(
    matched, staff, degradation
):
    # when: ended 120 days after the last purchase (Silver's step is 90 days)
    end_status_match(member=matched, reason="Wrong member", by=staff, now=at("2026-05-01"))
    # then: the match ends (Silver), and the inactivity makes Bronze at once
    assert tiers_of(matched) == ("silver", "bronze")
    reasons = TierChange.objects.filter(member=matched).order_by("pk")
    assert list(reasons.values_list("reason", flat=True))[-2:] == [
        "status_match_ended",
        "degradation",
    ]


def messages_after(action) -> list:
    """The messages the member reads of `action`: those queued before it sent first."""
    send_pending_notifications()
    mail.outbox.clear()
    action()
    send_pending_notifications()
    return mail.outbox


@pytest.mark.parametrize("by", ["agent", "nightly job"])
def test_a_match_that_ends_with_a_drop_is_told_in_one_message(matched, staff, degradation, by):
    """Found by a review of the messages: the member read "Your tier is now Silver",
    then "We miss you ... Bronze"."""

    def end():  # 120 days after the last purchase: Silver's step is 90 days
        if by == "agent":
            end_status_match(member=matched, reason="Wrong member", by=staff, now=at("2026-05-01"))
        else:
            degrade_inactive_members(now=at("2026-05-01", 3))  # its last day was 30 April

    (told,) = messages_after(end)

    assert tiers_of(matched) == ("silver", "bronze")
    assert told.subject == "We miss you. Your Silver tier is still here."
    assert (
        "Your Gold status match has ended. We have not seen you for a while, so for now you "
        "enjoy the benefits of Bronze."
    ) in told.body


def test_a_match_ended_with_a_drop_a_purchase_took_back_tells_the_end(
    matched, staff, degradation, buy
):
    def end_then_buy():
        end_status_match(member=matched, reason="Wrong member", by=staff, now=at("2026-05-01"))
        buy(matched, "10", when=at("2026-05-02"))  # Silver again at once (D3)

    subjects = [m.subject for m in messages_after(end_then_buy)]

    assert tiers_of(matched) == ("silver", "silver")
    assert subjects[0] == "Your Gold status match has ended"
    assert not any("We miss you" in subject for subject in subjects)


def test_ending_a_match_early_is_sent_as_a_tier_change(matched, staff):
    WebhookEndpoint.objects.create(
        url="https://crm.example.com/hook", events=["member.tier_changed"], secret="whsec_x"
    )
    events.subscriptions_changed()
    end_status_match(member=matched, reason="Wrong member", by=staff)
    assert WebhookDelivery.objects.filter(type="member.tier_changed").count() == 1


def test_ending_needs_a_reason_and_a_running_match(matched, make_member, staff):
    with pytest.raises(ValidationError, match="Say why the status match ends early"):
        end_status_match(member=matched, reason="\u200b ", by=staff)
    assert tiers_of(matched) == ("silver", "gold")
    other = make_member()
    with pytest.raises(ValidationError, match=f"{other.external_id} has no status match running"):
        end_status_match(member=other, reason="Wrong member", by=staff)


# On the member page


def page(client, member):
    return client.get(reverse("admin:members_member_change", args=[member.pk]))


def end_form(html: str) -> dict:
    form = re.search(r'<form[^>]*id="end-status-match".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_supervisor_ends_a_match_from_the_member_page_once(client, login, matched):
    # given: the member page, with "End the status match now" beside the match
    supervisor = login("CX supervisor")
    url = reverse("admin:members_member_end_status_match", args=[matched.pk])
    sent = end_form(page(client, matched).content.decode()) | {"end_match-reason": "Wrong member"}
    # when: sent twice (a double click)
    client.post(url, sent)
    done = client.post(url, sent, follow=True).content.decode()
    # then: ended once, the page says so and shows Silver
    assert "This form was already sent: nothing was applied twice." in done
    assert TierChange.objects.filter(member=matched, reason="status_match_ended").count() == 1
    assert tiers_of(matched) == ("silver", "silver")
    shown = page(client, matched).content.decode()
    assert 'id="end-status-match"' not in shown and 'id="status-match"' not in shown
    assert "the status match ended early by cx-supervisor; the tier the rules give" in shown
    grant = StatusGrant.objects.get(member=matched)
    assert grant.ended_by == supervisor
    history = client.get(reverse("admin:members_member_history", args=[matched.pk]))
    assert "Gold status match ended early: Wrong member" in history.content.decode()


def test_ending_without_a_reason_says_why_and_ends_nothing(client, login, matched):
    login("CX supervisor")
    url = reverse("admin:members_member_end_status_match", args=[matched.pk])
    sent = end_form(page(client, matched).content.decode()) | {"end_match-reason": "   "}
    done = client.post(url, sent, follow=True).content.decode()
    assert "Say why the status match ends early" in done
    assert tiers_of(matched) == ("silver", "gold")


def test_only_users_who_grant_matches_end_them(client, login, matched):
    login("CX agent")
    assert 'id="end-status-match"' not in page(client, matched).content.decode()
    url = reverse("admin:members_member_end_status_match", args=[matched.pk])
    refused = client.post(url, {"token": "7d5b4e1e-0000-4000-8000-000000000000", "reason": "x"})
    assert refused.status_code == 403
    assert tiers_of(matched) == ("silver", "gold")


def test_a_match_holds_through_its_last_day_against_degradation(matched, degradation):
    """Found by mutation: degradation cannot go below the granted tier on the match's
    last day; the run after it ends the match, and degrades."""
    degrade_inactive_members(now=at("2026-04-30", 23))
    assert tiers_of(matched) == ("silver", "gold")
    degrade_inactive_members(now=at("2026-05-01", 3))
    assert tiers_of(matched) == ("silver", "bronze")


def test_T3_a_match_ended_before_the_recalculation_reaches_the_member_gives_the_new_rules_tier(
    matched, staff
):
    """Found by a review: the member went back to the tier the old thresholds gave
    (Silver), told so, and the recalculation then moved them again ("rules changed")."""
    # given: a marketer has raised Silver to 2,000 points (the member has 1,000); the
    # recalculation has not run
    Tier.objects.filter(code="silver").update(threshold=2000)
    ProgrammeVersion.bump()

    # when
    end_status_match(member=matched, reason="Granted to the wrong member", by=staff)

    # then: Bronze by the new rules, the end of the match recorded and told as such
    assert tiers_of(matched) == ("bronze", "bronze")
    ended = TierChange.objects.filter(member=matched).latest("pk")
    assert (ended.reason, ended.from_tier.code, ended.to_tier.code) == (
        "status_match_ended",
        "gold",
        "bronze",
    )
