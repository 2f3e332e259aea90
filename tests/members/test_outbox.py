"""The outbox of messages to members (DESIGN.md, Notifications): sent by e-mail, each
once, none lost, whatever one message or the mail server does."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from members.models import Member, Notification
from members.services import enroll_member, erase_member, send_pending_notifications
from members.tasks import send_notifications_task
from tests.conftest import at

pytestmark = pytest.mark.django_db


class OneRefusedAddress:
    """An SMTP server that refuses one address and takes every other message; or drops
    the connection after `gone_after` messages; or asks to try later (`rate_limited`: a
    4xx answer to the programme's sender or to each address); or never answers for
    `silent_for` (an address whose check times out)."""

    delivered: list = []
    attempts: list = []
    gone_after = None
    rate_limited = None  # "sender" or "address": the answer to MAIL FROM or to RCPT TO
    silent_for = None

    def __init__(self, *args, **kwargs):
        pass

    def sendmail(self, sender, to, message, *args, **kwargs):
        self.attempts.extend(to)
        if self.rate_limited == "sender":
            raise smtplib.SMTPSenderRefused(451, b"4.7.1 Rate limit exceeded", sender)
        if self.rate_limited == "address":
            raise smtplib.SMTPRecipientsRefused({to[0]: (451, b"4.7.1 Rate limit exceeded")})
        if self.silent_for in to:
            raise TimeoutError("timed out")
        if self.gone_after is not None and len(self.attempts) > self.gone_after:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if "m-bad@example.com" in to:
            raise smtplib.SMTPRecipientsRefused({"m-bad@example.com": (550, b"No such user")})
        self.delivered.extend(to)
        return {}

    def quit(self):
        pass

    def close(self):
        pass


@pytest.fixture
def smtp(settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    monkeypatch.setattr("django.core.mail.backends.smtp.smtplib.SMTP", OneRefusedAddress)
    OneRefusedAddress.delivered, OneRefusedAddress.attempts = [], []
    OneRefusedAddress.gone_after = None
    OneRefusedAddress.rate_limited, OneRefusedAddress.silent_for = None, None
    return OneRefusedAddress.delivered


def test_a_refused_address_holds_up_no_other_message_and_none_goes_twice(make_member, buy, smtp):
    # given three tier-ups, the second to an address the server refuses
    for code in ("M-GOOD1", "M-BAD", "M-GOOD2"):
        buy(make_member(code), "1000.00", at("2026-03-02"))

    # when the task runs three times
    sent = [send_pending_notifications() for _ in range(3)]

    # then each good message went once; the refused one waits, counted, with its error
    assert sent == [2, 0, 0]
    assert sorted(smtp) == ["m-good1@example.com", "m-good2@example.com"]
    refused = Notification.objects.get(member__external_id="M-BAD")
    assert refused.sent_at is None and refused.failed_attempts == 3
    # in the mail server's words, not Python's (SMTPRecipientsRefused({...: (550, b'...')}))
    assert refused.last_error == (
        "The mail server refused the address (m-bad@example.com: 550 No such user)."
    )


def test_a_failed_message_goes_after_those_never_tried(make_member, buy, smtp):
    # given a refused message from before, then a new one
    buy(make_member("M-BAD"), "1000.00", at("2026-03-02"))
    send_pending_notifications()
    buy(make_member("M-NEW"), "1000.00", at("2026-03-02"))

    # when a run can send one message only
    send_pending_notifications(limit=1)

    # then it is the new one
    assert smtp == ["m-new@example.com"]


@pytest.mark.parametrize("name", ["Ann\rLee", "Ann\nLee"], ids=["return", "line feed"])
def test_a_line_break_in_a_name_breaks_no_message(tiers, no_campaigns, buy, name):
    # given a member whose first name holds a line break (kept from before names were
    # checked: enrolment refuses one now), and another
    odd = enroll_member(external_id="M-CR", email="cr@example.com", first_name="Ann")
    Member.objects.filter(pk=odd.pk).update(first_name=name)
    buy(Member.objects.get(pk=odd.pk), "1000.00", at("2026-03-02"))
    buy(
        enroll_member(external_id="M-OTHER", email="other@example.com"), "1000.00", at("2026-03-02")
    )

    # when
    send_pending_notifications()

    # then both are sent, the name on one line
    assert sorted(m.to[0] for m in mail.outbox) == ["cr@example.com", "other@example.com"]
    assert "Welcome to Silver, Ann Lee!" in [m.subject for m in mail.outbox]


def test_a_message_is_plain_text_not_html(tiers, no_campaigns, buy):
    member = enroll_member(external_id="M-OB", email="ob@example.com", first_name="Siobhán O'Brien")
    buy(member, "1000.00", at("2026-03-02"))

    send_pending_notifications()

    assert mail.outbox[-1].subject == "Welcome to Silver, Siobhán O'Brien!"
    assert "Hello Siobhán O'Brien," in mail.outbox[-1].body


def test_messages_to_an_erased_member_are_dropped_even_when_queued_after(make_member, buy, staff):
    # given an erased member, then a message queued for them by a later job
    member = make_member("M-GONE")
    buy(member, "1000.00", at("2026-03-02"))
    erase_member(member=member, by=staff)
    Notification.objects.create(member=member, kind=Notification.Kind.EXPIRY_REMINDER, points=5)

    # when
    send_pending_notifications()

    # then nothing went to them, and nothing waits for them
    assert mail.outbox == []
    assert not Notification.objects.filter(member=member).exists()


def test_a_refused_message_is_tried_once_a_run_of_the_every_minute_task(make_member, buy, smtp):
    # given a tier-up to a refused address and one to a good address
    buy(make_member("M-BAD"), "1000.00", at("2026-03-02"))
    buy(make_member("M-GOOD"), "1000.00", at("2026-03-02"))

    # when the every-minute task runs once
    assert send_notifications_task() == 1

    # then the refused message was tried once in that minute
    assert OneRefusedAddress.attempts.count("m-bad@example.com") == 1
    assert Notification.objects.get(member__external_id="M-BAD").failed_attempts == 1


def test_a_server_gone_midway_stops_the_run_keeping_what_it_took(make_member, buy, smtp):
    # given two tier-ups; the server goes away after taking the first
    buy(make_member("M-ONE"), "1000.00", at("2026-03-02"))
    buy(make_member("M-TWO"), "1000.00", at("2026-03-02"))
    OneRefusedAddress.gone_after = 1

    # when
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send_pending_notifications()

    # then the first is marked sent (never sent again); the second waits, tried once
    # but not refused: the server, not its address, failed
    assert Notification.objects.get(member__external_id="M-ONE").sent_at is not None
    second = Notification.objects.get(member__external_id="M-TWO")
    assert (second.sent_at, second.failed_attempts, second.first_refused_at) == (None, 1, None)
    assert second.last_error == (
        "The mail server stopped answering while it was sent (Connection unexpectedly "
        "closed): tried again."
    )
    OneRefusedAddress.gone_after = None
    assert send_pending_notifications() == 1
    assert smtp == ["m-one@example.com", "m-two@example.com"]


@pytest.mark.parametrize("limited", ["sender", "address"])
def test_a_day_of_a_rate_limit_gives_up_no_message(make_member, buy, smtp, limited):
    """Found by reviews: a rate limit (451 to MAIL FROM, or to each RCPT TO) counted as a
    refusal of each message, and a day of it gave up the whole outbox."""
    # given: three tier-ups; the server asks to try later for a day
    for code in ("M-ONE", "M-TWO", "M-THREE"):
        buy(make_member(code), "1000.00", at("2026-03-02"))
    OneRefusedAddress.rate_limited = limited
    first = at("2026-03-03 10:00")
    for minute in range(3):
        with pytest.raises(smtplib.SMTPException):
            send_pending_notifications(now=first + timedelta(minutes=minute))

    # when the server takes mail again a day later
    OneRefusedAddress.rate_limited = None
    send_pending_notifications(now=first + timedelta(hours=25))

    # then every message goes
    assert sorted(smtp) == ["m-one@example.com", "m-three@example.com", "m-two@example.com"]


def test_a_message_the_server_never_answers_for_holds_up_no_other(make_member, buy, smtp):
    """Found by a review: it stopped every run first, and no other message went."""
    # given: three tier-ups, the first to an address the server never answers for
    for code in ("M-DEAD", "M-ONE", "M-TWO"):
        buy(make_member(code), "1000.00", at("2026-03-02"))
    OneRefusedAddress.silent_for = "m-dead@example.com"

    # when the every-minute task runs twice
    for _ in range(2):
        with pytest.raises(TimeoutError):
            send_notifications_task()

    # then the others went; it waits, tried, not given up
    assert smtp == ["m-one@example.com", "m-two@example.com"]
    dead = Notification.objects.get(member__external_id="M-DEAD")
    assert (dead.sent_at, dead.failed_attempts, dead.first_refused_at) == (None, 2, None)


def test_a_message_refused_for_a_day_is_given_up_and_shown_so(
    make_member, buy, smtp, admin_client, django_assert_max_num_queries
):
    # given a tier-up to an address the server refuses, first refused at 10:00
    buy(make_member("M-BAD"), "1000.00", at("2026-03-02"))
    first = at("2026-03-03 10:00")
    send_pending_notifications(now=first)

    # when the task runs again within the day, then a day after the first refusal
    send_pending_notifications(now=first + timedelta(hours=23, minutes=59))
    tried_within_the_day = OneRefusedAddress.attempts.count("m-bad@example.com")
    buy(make_member("M-NEW"), "1000.00", at("2026-03-02"))
    sent = send_pending_notifications(now=first + timedelta(hours=24))

    # then it was tried twice, and not after the day; the others still go
    assert tried_within_the_day == 2
    assert OneRefusedAddress.attempts.count("m-bad@example.com") == 2
    assert sent == 1 and smtp == ["m-new@example.com"]
    refused = Notification.objects.get(member__external_id="M-BAD")
    assert refused.sent_at is None and refused.failed_attempts == 2

    # and the Notifications page lists it as given up, with the server's answer
    url = reverse("admin:members_notification_changelist")
    with django_assert_max_num_queries(12):
        page = admin_client.get(url, {"delivery": "given_up"}).content.decode()
    assert "Given up: refused for a day" in page and "No such user" in page
    assert "M-NEW" not in page
