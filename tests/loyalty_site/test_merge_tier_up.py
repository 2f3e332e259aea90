"""T2 and M3 through a merge confirmed in the CX Manager: a survivor raised to a tier
neither account had reached gets its bonus once and the tier-up e-mail; raised to a
tier the duplicate had reached, neither (the customer was welcomed to it before)."""

import uuid

import pytest
from django.core import mail
from django.urls import reverse

from members.models import TierChange
from members.services import send_pending_notifications
from points.models import LedgerEntry
from points.services import record_return
from tests.conftest import at

pytestmark = pytest.mark.django_db


def confirm_merge(client, keep, code):
    url = reverse("admin:members_member_merge", args=[keep.pk])
    form = {"merge-duplicate": code, "merge-reason": "New e-mail", "merge-token": uuid.uuid4()}
    response = client.post(url, {**form, "_confirm": "1"})
    assert response.status_code == 302


def mail_to(member) -> list[tuple[str, str]]:
    send_pending_notifications()
    return [(m.subject, m.body) for m in mail.outbox if m.to == [member.email]]


def test_a_merge_that_raises_the_survivor_to_a_tier_neither_reached_welcomes_it_once(
    client, login, keep, old, buy
):
    # given: two Silver accounts, each welcomed to Silver already
    login("CX agent")
    buy(keep, "1800")
    buy(old, "1500")
    send_pending_notifications()
    mail.outbox.clear()

    # when: an agent merges them (3,300 lifetime points: Gold)
    confirm_merge(client, keep, "M-OLD")

    # then: the Gold e-mail, with the bonus, once; the bonus line and the history
    [(subject, body)] = mail_to(keep)
    assert subject == "Welcome to Gold, and thank you!"
    assert "You have reached Gold." in body and "we have added 250 points" in body
    assert LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").count() == 1
    change = TierChange.objects.filter(member=keep).first()
    assert (change.reason, change.to_tier.code) == ("merge", "gold")
    assert mail_to(keep) == [(subject, body)]  # nothing more on the next run


def test_a_merge_that_raises_the_survivor_to_a_tier_the_duplicate_reached_sends_nothing(
    client, login, keep, old, buy
):
    # given: M-OLD reached Gold once, then a return took it back to Silver
    login("CX agent")
    purchase = buy(old, "3100", when=at("2026-03-02"))
    record_return(
        member=old,
        amount=purchase.amount - 1500,
        occurred_at=at("2026-03-03"),
        external_id="R-1",
        original_external_id=purchase.external_id,
    )
    buy(keep, "1500")
    send_pending_notifications()
    mail.outbox.clear()

    # when: merged back to 3,000 lifetime points
    confirm_merge(client, keep, "M-OLD")

    # then: Gold again, no bonus, no e-mail (T2: not a tier-up)
    assert TierChange.objects.filter(member=keep).first().to_tier.code == "gold"
    assert not LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").exists()
    assert mail_to(keep) == []
