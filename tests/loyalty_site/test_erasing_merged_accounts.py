"""Erasing an account merged into another, on its own (the customer's old account,
erased after the merge), leaves its old customer code nowhere the CX Manager shows it
but the ledger, which is never edited (rules.md, Erasing a member): not in the admin
history of the account kept, nor in a status match the merge carried over, nor in the
history of an account merged into it before (M7)."""

import smtplib
import uuid
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Value
from django.db.models.functions import Replace
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Notification
from members.services import merge_members
from tests.loyalty_site.conftest import page, said
from tiers.models import StatusGrant, Tier
from tiers.services import grant_status

pytestmark = pytest.mark.django_db


def merge(survivor, duplicate, by):
    merge_members(survivor=survivor, duplicate=duplicate, by=by, reason="New e-mail address")


def erase_alone(client, member):
    """The privacy tool, on this one account: confirmed on its page."""
    client.post(
        reverse("admin:members_member_changelist"),
        {"action": "erase", "_selected_action": [member.pk], "confirm": "yes"},
    )
    return Member.objects.get(pk=member.pk)


def history(client, member) -> str:
    response = client.get(reverse("admin:members_member_history", args=[member.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_erasing_a_closed_account_alone_takes_its_code_out_of_both_histories(
    client_admin, keep, old, staff
):
    # given: the old account merged into the one the customer keeps
    merge(keep, old, staff)
    assert "Merged M-OLD into this member" in history(client_admin, keep)

    # when: the old account is erased on its own
    erased = erase_alone(client_admin, old)

    # then: neither history names M-OLD; the account kept names the erased one by the
    # code it has now, and is still named by its own
    kept, closed = history(client_admin, keep), history(client_admin, erased)
    assert "M-OLD" not in kept and "M-OLD" not in closed
    assert f"Merged {erased.external_id} into this member: New e-mail address." in kept
    assert "Merged into M-KEEP: New e-mail address." in closed


def test_erasing_a_closed_account_alone_takes_its_code_out_of_the_status_match_it_gave(
    client_admin, keep, old, staff
):
    # given: the old account's status match goes on for the account kept
    gold = Tier.objects.get(code="gold")
    until = timezone.localdate() + timedelta(days=60)
    grant_status(member=old, tier=gold, until=until, reason="Gold card of a rival", by=staff)
    merge(keep, old, staff)

    # when
    erased = erase_alone(client_admin, old)

    # then: the page of the account kept says where its match came from, without M-OLD
    match = said(page(client_admin, keep), "status-match")
    assert "M-OLD" not in match
    assert f"Carried over from {erased.external_id} (merged): Gold card of a rival" in match


def test_erasing_the_account_kept_takes_the_codes_out_of_the_status_match_too(
    client_admin, keep, old, staff
):
    # given
    gold = Tier.objects.get(code="gold")
    until = timezone.localdate() + timedelta(days=60)
    grant_status(member=old, tier=gold, until=until, reason="Gold card of a rival", by=staff)
    merge(keep, old, staff)

    # when: the customer is forgotten, both accounts together (M9)
    erase_alone(client_admin, keep)

    # then
    assert "M-OLD" not in said(page(client_admin, keep), "status-match")


def test_erasing_the_first_of_accounts_merged_twice_takes_its_code_out_of_the_middle_one(
    client_admin, keep, old, make_member, staff
):
    # given: M-OLD merged into M-MID, then M-MID into M-KEEP (M7)
    mid = make_member("M-MID")
    merge(mid, old, staff)
    merge(keep, mid, staff)

    # when: M-OLD is erased on its own
    erase_alone(client_admin, old)

    # then: no history names it, M-MID's neither
    for account in (keep, mid, old):
        assert "M-OLD" not in history(client_admin, account), account.external_id


def test_erasing_one_account_leaves_the_code_it_is_the_start_of(
    client_admin, keep, make_member, staff
):
    # given: M-1 and M-10, both merged into the account kept
    one, ten = make_member("M-1"), make_member("M-10")
    merge(keep, one, staff)
    merge(keep, ten, staff)

    # when: M-1 is erased on its own
    erased = erase_alone(client_admin, one)

    # then: M-10 is still named whole, M-1 no more
    kept = history(client_admin, keep)
    assert "Merged M-10 into this member" in kept
    assert f"Merged {erased.external_id} into this member" in kept
    assert "M-1 " not in kept and "M-1:" not in kept


def test_erasing_the_account_kept_leaves_no_part_of_a_longer_code_merged_into_it(
    client_admin, keep, make_member, staff
):
    # given
    one, ten = make_member("M-1"), make_member("M-10")
    merge(keep, one, staff)
    merge(keep, ten, staff)

    # when: all three go together (M9)
    erase_alone(client_admin, keep)

    # then: each merge names the code its account has now
    kept = history(client_admin, keep)
    for account in (one, ten):
        code = Member.objects.get(pk=account.pk).external_id
        assert f"Merged {code} into this member" in kept


def test_an_erased_member_s_messages_keep_no_address_in_why_they_were_refused(
    client_admin, member, staff
):
    # given: a message the mail server refused once, then sent
    refused = smtplib.SMTPRecipientsRefused({member.email: (450, b"Try again later")})
    Notification.objects.create(
        member=member,
        kind=Notification.Kind.TIER_UP,
        failed_attempts=1,
        last_error=repr(refused)[:255],
        sent_at=timezone.now(),
    )
    address = member.email

    # when
    erase_alone(client_admin, member)

    # then: the Messages list no longer shows the address
    listed = client_admin.get(reverse("admin:members_notification_changelist"))
    assert listed.status_code == 200
    assert address not in listed.content.decode()


def test_the_upgrade_renames_the_codes_erasures_left_before_this_rule(
    client_admin, keep, old, make_member, staff
):
    # given: M-OLD (Gold by a status match) merged into M-KEEP, and M-1 and M-10 too;
    # M-OLD and M-1 erased on their own before this rule: the merges still name them
    gold = Tier.objects.get(code="gold")
    until = timezone.localdate() + timedelta(days=60)
    grant_status(member=old, tier=gold, until=until, reason="Gold card of a rival", by=staff)
    merge(keep, old, staff)
    one, ten = make_member("M-1"), make_member("M-10")
    merge(keep, one, staff)
    merge(keep, ten, staff)
    erased = {}
    for account, code in ((old, "M-OLD"), (one, "M-1")):
        erased[code] = erase_alone(client_admin, account).external_id
        for rows, field in ((LogEntry.objects, "change_message"), (StatusGrant.objects, "reason")):
            rows.update(**{field: Replace(field, Value(erased[code]), Value(code))})
    Notification.objects.create(
        member=one, kind=Notification.Kind.TIER_UP, last_error="refused m-1@example.com"
    )
    assert "Merged M-OLD into this member" in history(client_admin, keep)
    upgrade = import_module("loyalty_site.migrations.0014_erased_codes_out_of_merge_history")

    # when
    upgrade.rename_erased_codes(apps, SimpleNamespace(connection=connection))

    # then: the codes they have now, M-10 named whole
    kept = history(client_admin, keep)
    assert "M-OLD" not in kept and "M-1 " not in kept and "Merged M-10 into this member" in kept
    for code, now in erased.items():
        assert f"Merged {now} into this member" in kept, code
    match = said(page(client_admin, keep), "status-match")
    assert f"Carried over from {erased['M-OLD']} (merged)" in match
    listed = client_admin.get(reverse("admin:members_notification_changelist")).content.decode()
    assert "m-1@example.com" not in listed


def freeze_on_page(client, member, reason, days=30):
    """A supervisor's freeze, set on the member page (the admin history notes it)."""
    until = timezone.localdate() + timedelta(days=days)
    form = {"freeze-until": until.isoformat(), "freeze-reason": reason}
    response = client.post(
        reverse("admin:members_member_freeze", args=[member.pk]),
        {**form, "freeze-token": str(uuid.uuid4())},
        follow=True,  # the member page, which says "Frozen until ...: <reason>." once
    )
    assert response.status_code == 200


def test_erasing_a_member_takes_the_reason_of_their_freezes_out_of_the_history(
    client_admin, keep, old, staff
):
    # given: a freeze set on the member page, and the old account's freeze carried over
    # by a merge: both reasons in the admin histories
    freeze_on_page(client_admin, keep, "Chemotherapy", days=20)
    freeze_on_page(client_admin, old, "Hospital stay", days=40)
    merge(keep, old, staff)
    assert "Chemotherapy" in history(client_admin, keep)
    assert "(Hospital stay) goes on here" in history(client_admin, keep)

    # when: the customer is erased (the old account with the one kept)
    erase_alone(client_admin, keep)

    # then: no history names why they were frozen, and says that it was
    kept, closed = history(client_admin, keep), history(client_admin, old)
    for reason in ("Chemotherapy", "Hospital stay"):
        assert reason not in kept and reason not in closed
    assert "Erased with the member&#x27;s personal data" in kept
    assert "Frozen until" in kept and "Frozen until" in closed


def test_erasing_a_closed_account_alone_takes_its_freeze_reason_out_of_the_history(
    client_admin, keep, old, staff
):
    # given
    freeze_on_page(client_admin, old, "Hospital stay")
    until = Member.objects.get(pk=old.pk).frozen_until
    merge(keep, old, staff)
    assert "Hospital stay" in page(client_admin, keep)  # the freeze goes on there

    # when: the old account alone is erased
    erased = erase_alone(client_admin, old)

    # then: gone from both histories and from the page of the account kept, whose freeze
    # goes on
    assert "Hospital stay" not in history(client_admin, keep)
    assert "Hospital stay" not in history(client_admin, erased)
    kept = page(client_admin, keep)
    assert "Hospital stay" not in kept and "Erased with the member&#x27;s personal data" in kept
    assert Member.objects.get(pk=keep.pk).frozen_until == until


def test_erasing_the_first_of_accounts_merged_twice_takes_its_freeze_reason_off_the_middle_one(
    client_admin, keep, old, make_member, staff
):
    # given: M-OLD's freeze carried over to M-MID by their merge, then on to M-KEEP
    mid = make_member("M-MID")
    freeze_on_page(client_admin, old, "Hospital stay")
    merge(mid, old, staff)
    merge(keep, mid, staff)

    # when: M-OLD is erased on its own
    erase_alone(client_admin, old)

    # then: no account of the customer shows the reason
    for account in (keep, mid):
        assert "Hospital stay" not in page(client_admin, account), account.external_id
    assert not Member.objects.filter(freeze_reason="Hospital stay").exists()


def test_erasing_a_closed_account_alone_keeps_the_reason_of_the_kept_accounts_own_freeze(
    client_admin, keep, old, staff
):
    # given: the account kept has the later freeze, its own
    freeze_on_page(client_admin, old, "Hospital stay", days=20)
    freeze_on_page(client_admin, keep, "Relocation", days=40)
    merge(keep, old, staff)

    # when
    erase_alone(client_admin, old)

    # then
    assert "Relocation" in page(client_admin, keep)


def test_the_upgrade_removes_the_freeze_reasons_erasures_left_before_this_rule(
    client_admin, keep, old, member, staff
):
    # given: the customer of M-KEEP (M-OLD merged into it) erased before this rule, with
    # the reasons of their freezes still in the history; another member's freeze
    freeze_on_page(client_admin, keep, "Chemotherapy", days=20)
    freeze_on_page(client_admin, old, "Hospital stay", days=40)
    freeze_on_page(client_admin, member, "Relocation")
    merge(keep, old, staff)
    notes = list(LogEntry.objects.values_list("pk", "change_message"))
    erase_alone(client_admin, keep)
    for pk, message in notes:  # as the erasure left them before
        LogEntry.objects.filter(pk=pk).update(change_message=message)
    assert "Chemotherapy" in history(client_admin, keep)
    upgrade = import_module("loyalty_site.migrations.0015_erased_freeze_reasons_out_of_history")

    # when
    upgrade.remove_erased_freeze_reasons(apps, SimpleNamespace(connection=connection))

    # then: gone from the erased customer's accounts, kept for the member not erased
    for account in (keep, old):
        for reason in ("Chemotherapy", "Hospital stay"):
            assert reason not in history(client_admin, account)
    assert "Relocation" in history(client_admin, member)


def test_an_erased_member_can_be_neither_frozen_nor_status_matched(client_admin, keep, staff):
    # given: the customer asked to be forgotten
    erase_alone(client_admin, keep)
    erased = Member.objects.get(pk=keep.pk)

    # when: a supervisor posts a freeze with a reason about their health
    until = timezone.localdate() + timedelta(days=30)
    form = {"freeze-until": until.isoformat(), "freeze-reason": "Chemotherapy"}
    shown = client_admin.post(
        reverse("admin:members_member_freeze", args=[erased.pk]),
        {**form, "freeze-token": str(uuid.uuid4())},
        follow=True,
    ).content.decode()

    # then: refused and recorded nowhere; the page offers neither form
    assert "would record something new about a customer who asked to be forgotten" in shown
    erased.refresh_from_db()
    assert erased.frozen_until is None and erased.freeze_reason == ""
    assert "Chemotherapy" not in history(client_admin, erased)
    page_html = page(client_admin, erased)
    assert 'id="freeze-form"' not in page_html and "Grant the tier" not in page_html
    with pytest.raises(ValidationError, match="asked to be forgotten"):
        grant_status(
            member=erased,
            tier=Tier.objects.get(code="gold"),
            until=until,
            reason="Gold at a competitor",
            by=staff,
        )
    assert not StatusGrant.objects.filter(member=erased).exists()
