"""Audit of the messages to members (docs/rules.md, "Messages to members"): what a
member reads in each e-mail, and what a CX agent sees of it on the Notifications page."""

import html
import socket
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Notification
from members.services import (
    enroll_member,
    erase_member,
    merge_members,
    send_pending_notifications,
)
from points.services import record_return
from tests.conftest import at
from tiers.models import Tier
from tiers.services import degrade_inactive_members, grant_status

pytestmark = pytest.mark.django_db


def sent_to(email):
    send_pending_notifications()
    return [m for m in mail.outbox if m.to == [email]]


def test_a_tier_up_writes_its_bonus_as_the_product_writes_points(tiers, no_campaigns, buy):
    # given a Silver bonus of 1 point and a Gold bonus of 1,250
    Tier.objects.filter(code="silver").update(upgrade_bonus_points=1)
    Tier.objects.filter(code="gold").update(upgrade_bonus_points=1_250)
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")

    # when she reaches Silver, then Gold, each message sent before the next purchase
    buy(ana, "1000.00", at("2026-03-02"))
    sent_to("ana@example.com")
    buy(ana, "1400.00", at("2026-03-03"))

    # then each message counts its bonus in English, with a thousands separator
    silver, gold = sent_to("ana@example.com")
    assert "we have added 1 point to your balance. You can spend it right away." in silver.body
    assert "From now on your purchases earn 1.5 times the points." in silver.body
    assert "we have added 1,250 points to your balance. You can spend them right away." in (
        gold.body
    )
    assert "From now on your purchases earn twice the points." in gold.body


def test_a_tier_of_benefits_alone_is_not_told_it_earns_1_times_the_points(tiers, no_campaigns, buy):
    """Found by an audit: a tier at x1 (benefits, no extra points) read "earn 1 times
    the points"."""
    Tier.objects.filter(code="silver").update(multiplier=1)
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")

    buy(ana, "1000.00", at("2026-03-02"))

    (silver,) = sent_to("ana@example.com")
    assert "From now on your purchases earn points at the standard rate." in silver.body


def test_a_status_match_writes_its_multiplier_as_the_member_page_does(tiers, no_campaigns, staff):
    # given a Bronze member matched to Silver (x1.5)
    bea = enroll_member(external_id="M-BEA", email="bea@example.com", first_name="Bea")
    silver = Tier.objects.get(code="silver")

    # when
    grant_status(
        member=bea,
        tier=silver,
        until=date(2026, 4, 30),
        reason="Match",
        by=staff,
        now=at("2026-03-02"),
    )

    # then the message says x1.5 as "1.5 times", not "1.50 times"
    (told,) = sent_to("bea@example.com")
    assert "your purchases earn 1.5 times the points" in told.body


def test_a_mail_server_that_answers_nothing_holds_no_worker_and_loses_no_message(
    tiers, no_campaigns, buy, settings
):
    # given a tier-up waiting, and a mail server that takes the connection and never
    # answers (a firewall that swallows it, a server hung)
    assert settings.EMAIL_TIMEOUT, "the programme waits for the mail server at most this long"
    buy(enroll_member(external_id="M-CAL", email="cal@example.com"), "1000.00", at("2026-03-02"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = silent.getsockname()
    settings.EMAIL_TIMEOUT = 1  # the setting's own value, shortened for the test

    # when the every-minute run starts
    started = time.monotonic()
    try:
        with pytest.raises(OSError):
            send_pending_notifications()
    finally:
        silent.close()

    # then it gives up on the server within the timeout; the message waits, not counted
    # as refused by the server
    assert time.monotonic() - started < 10
    waiting = Notification.objects.get(member__external_id="M-CAL")
    assert waiting.sent_at is None and waiting.failed_attempts == 0


def test_a_merge_drops_the_closed_accounts_messages_not_yet_sent(tiers, no_campaigns, buy, staff):
    # given a customer's old account, told it reached Silver, that reaches Gold while
    # the mail server is down: its "Welcome to Gold" waits
    keep = enroll_member(external_id="M-KEEP", email="new@example.com", first_name="Ana")
    old = enroll_member(external_id="M-OLD", email="old@example.com", first_name="Ana")
    buy(old, "1000.00", at("2026-03-02"))
    send_pending_notifications()
    buy(old, "1400.00", at("2026-03-03"))

    # when an agent merges it into the account she keeps, and the server is back
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")
    mail.outbox.clear()
    send_pending_notifications()

    # then the closed account's old address gets nothing about points it no longer
    # has; what it was sent before the merge stays on the Notifications page
    assert [m.to for m in mail.outbox] == []
    assert list(Notification.objects.filter(member=old).values_list("kind", flat=True)) == [
        "tier_up"
    ]
    assert Notification.objects.get(member=old).sent_at is not None


def test_a_degradation_undone_before_its_message_went_is_not_told(
    tiers, no_campaigns, buy, degradation
):
    # given a Silver member dropped to Bronze by the nightly job while the mail server
    # was down: "We miss you" waits
    dan = enroll_member(external_id="M-DAN", email="dan@example.com", first_name="Dan")
    buy(dan, "1000.00", at("2026-01-02"))
    send_pending_notifications()
    mail.outbox.clear()
    degrade_inactive_members(now=at("2026-04-10", 3))

    # when he buys that morning, before the server is back
    buy(dan, "20.00", at("2026-04-10", 10))
    send_pending_notifications()

    # then he is told neither "We miss you" nor "Welcome back": he never left Silver
    # for him; the tier history keeps both changes
    assert [m.subject for m in mail.outbox] == []
    assert list(dan.tier_changes.values_list("reason", flat=True).order_by("pk"))[-2:] == [
        "degradation",
        "restoration",
    ]


def test_a_degradation_told_before_the_purchase_is_followed_by_welcome_back(
    tiers, no_campaigns, buy, degradation
):
    # given a member told "We miss you"
    eva = enroll_member(external_id="M-EVA", email="eva@example.com", first_name="Eva")
    buy(eva, "1000.00", at("2026-01-02"))
    degrade_inactive_members(now=at("2026-04-10", 3))
    send_pending_notifications()

    # when she buys
    buy(eva, "20.00", at("2026-04-10", 10))
    send_pending_notifications()

    # then she is welcomed back
    subjects = [m.subject for m in mail.outbox]
    assert subjects[-2:] == [
        "We miss you. Your Silver tier is still here.",
        "Welcome back! You are Silver again.",
    ]


def test_an_agent_reads_on_the_notifications_page_the_message_the_member_got(
    tiers, no_campaigns, buy, client, login
):
    # given a member who reached Silver, told by e-mail
    Tier.objects.filter(code="silver").update(upgrade_bonus_points=1_250)
    ines = enroll_member(external_id="M-INES", email="ines@example.com", first_name="Inés")
    buy(ines, "1000.00", at("2026-03-02"))
    (sent,) = sent_to("ines@example.com")

    # when a CX agent she calls opens the message on the Notifications page
    login("CX agent")
    notification = Notification.objects.get(member=ines)
    page = client.get(reverse("admin:members_notification_change", args=[notification.pk]))

    # then it shows what she read, subject and text, and when it was sent; not the
    # message's raw data
    text = html.unescape(page.content.decode())
    assert page.status_code == 200
    assert sent.subject == "Welcome to Silver, Inés!"
    assert sent.subject in text
    assert "As a welcome, we have added 1,250 points to your balance." in text
    assert '{"bonus": 1250}' not in text
    assert "Sent at" in text


def test_the_notifications_page_shows_the_message_as_sent_not_as_today_would_write_it(
    tiers, no_campaigns, buy, client, login
):
    """Found by an audit: the page wrote the message again from today's data: a member
    told "Welcome to Silver, Hugo! ... 1.5 times the points" read, after a rename and a
    new multiplier, "Welcome to Silver, Hugh! ... 1 times"; and it never said where it
    went."""
    # given: Hugo told he earns 1.5 times the points at Silver
    hugo = enroll_member(external_id="M-HUGO", email="hugo@example.com", first_name="Hugo")
    buy(hugo, "1000.00", at("2026-03-02"))
    (sent,) = sent_to("hugo@example.com")
    # when: Silver becomes x2, and his name and address are corrected
    Tier.objects.filter(code="silver").update(multiplier=2)
    Member.objects.filter(pk=hugo.pk).update(first_name="Hugh", email="hugh@example.com")
    login("CX agent")
    notification = Notification.objects.get(member=hugo)
    page = client.get(reverse("admin:members_notification_change", args=[notification.pk]))

    # then: the page shows what he was sent, and where
    shown = page.content.decode().split('id="message"')[1].split("</div>")[0]
    text = " ".join(html.unescape(shown).split())
    assert "To hugo@example.com" in text
    assert "Welcome to Silver, Hugo!" in text and "Hugh" not in text
    assert "From now on your purchases earn 1.5 times the points." in text
    assert " ".join(sent.body.split()) in text


def test_an_erased_member_s_sent_messages_keep_no_name_nor_address(tiers, no_campaigns, buy, staff):
    hugo = enroll_member(external_id="M-HUGO", email="hugo@example.com", first_name="Hugo")
    buy(hugo, "1000.00", at("2026-03-02"))
    sent_to("hugo@example.com")

    erase_member(member=hugo, by=staff)

    kept = Notification.objects.get(member=hugo)
    assert kept.sent_at is not None and kept.sent_to == ""
    assert kept.sent_text == "Sent. Its text was erased with the member's personal data."


def test_an_agent_sends_a_given_up_message_again_once_the_address_is_corrected(
    tiers, no_campaigns, buy, client, login, settings, monkeypatch
):
    # given a tier-up the mail server refused for a day (a typo in the address): given up
    from tests.members.test_outbox import OneRefusedAddress

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    monkeypatch.setattr("django.core.mail.backends.smtp.smtplib.SMTP", OneRefusedAddress)
    OneRefusedAddress.delivered, OneRefusedAddress.attempts = [], []
    ana = enroll_member(external_id="M-ANA", email="m-bad@example.com", first_name="Ana")
    buy(ana, "1000.00", at("2026-03-02"))
    send_pending_notifications(now=at("2026-03-02", 13))
    send_pending_notifications(now=at("2026-03-03", 14))
    given_up = Notification.objects.get(member=ana)
    assert given_up.sent_at is None and given_up.first_refused_at is not None

    # when the agent corrects the address and sends the message again from the list
    type(ana).objects.filter(pk=ana.pk).update(email="ana@example.com")
    login("CX agent")
    page = client.post(
        reverse("admin:members_notification_changelist"),
        {"action": "send_again", "_selected_action": [given_up.pk]},
        follow=True,
    )

    # then it goes with the next run, to the corrected address, once
    assert "1 message will be sent again within a minute." in page.content.decode()
    assert send_pending_notifications() == 1
    assert OneRefusedAddress.delivered == ["ana@example.com"]
    assert send_pending_notifications() == 0


def test_only_an_agent_sends_refused_messages_again(tiers, client, login):
    """The action is a change (it queues messages again): it checks its own permission,
    which CX agents have, not the view of the messages that marketers have too."""
    # given: a message the server refused
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")
    refused = Notification.objects.create(
        member=ana, kind=Notification.Kind.TIER_UP, first_refused_at=at("2026-03-02")
    )
    url = reverse("admin:members_notification_changelist")

    # when: a marketer sends the action anyway, then an agent
    login("Marketer")
    offered_to_marketer = "send_again" in client.get(url).content.decode()
    client.post(url, {"action": "send_again", "_selected_action": [refused.pk]})
    after_marketer = Notification.objects.get(pk=refused.pk).first_refused_at
    login("CX agent")
    offered_to_agent = "send_again" in client.get(url).content.decode()
    client.post(url, {"action": "send_again", "_selected_action": [refused.pk]})

    # then: only the agent's is offered and done; supervisors may too
    assert (offered_to_marketer, after_marketer) == (False, at("2026-03-02"))
    assert offered_to_agent and Notification.objects.get(pk=refused.pk).first_refused_at is None
    supervisors = Group.objects.get(name="CX supervisor").permissions
    assert supervisors.filter(codename="send_again_notification").exists()


# Messages that the member's next change makes untrue before they go (D4 for every tier
# message): found by a review of the messages.


def test_a_file_crossing_two_tiers_tells_only_the_tier_it_leaves_the_member_at(
    tiers, no_campaigns, buy
):
    # given
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")

    # when: Silver, then Gold, before the outbox runs (one import file, say)
    buy(ana, "1000.00", at("2026-03-02"))
    buy(ana, "1400.00", at("2026-03-03"))

    # then: no "From now on your purchases earn 1.5 times the points" to a Gold member
    (gold,) = sent_to("ana@example.com")
    assert gold.subject.startswith("Welcome to Gold")
    assert "From now on your purchases earn twice the points." in gold.body


def test_a_tier_up_its_purchase_s_return_took_back_is_not_sent(tiers, no_campaigns, buy):
    # given: Silver by a purchase, its message not sent yet
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")
    purchase = buy(ana, "1000.00", at("2026-03-02"))

    # when: the purchase is returned in part, back below Silver
    record_return(
        member=ana,
        original_external_id=purchase.external_id,
        amount=Decimal("500.00"),
        occurred_at=at("2026-03-03"),
        external_id="R-1",
    )

    # then: she is not told she is Silver
    assert sent_to("ana@example.com") == []


def test_a_status_match_ended_before_its_message_went_sends_only_the_end(tiers, staff):
    from tiers.services import end_status_match

    # given: Gold by a status match granted by mistake, its message not sent yet
    ana = enroll_member(external_id="M-ANA", email="ana@example.com", first_name="Ana")
    until = timezone.localdate() + timedelta(days=30)
    gold = Tier.objects.get(code="gold")
    grant_status(member=ana, tier=gold, until=until, reason="Card", by=staff)

    # when: ended a minute later
    end_status_match(member=ana, reason="Granted to the wrong member", by=staff)

    # then
    (ended,) = sent_to("ana@example.com")
    assert ended.subject == "Your Gold status match has ended"
