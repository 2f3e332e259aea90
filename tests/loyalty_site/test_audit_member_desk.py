"""Audit of the CX agent's daily work in the CX Manager: defects a user hits, each as a
failing test named after the rule it protects (member page forms, merge, erasure,
contact edits, member search)."""

import threading
import uuid
from datetime import date, timedelta

import pytest
from django.contrib import messages as django_messages
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connections
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from api.webhook_endpoints import save_endpoint
from core.models import WebhookEndpoint
from loyalty_site.demo import load_catalogue
from members.models import Member
from members.services import enroll_member, erase_member, merge_members
from points.models import LedgerEntry
from points.services import adjust_points
from points.services.freezing import freeze_member
from rewards.models import Redemption, Reward
from rewards.services import redeem
from tests.conftest import ledger_state, postgres_only
from tests.loyalty_site.conftest import said

pytestmark = pytest.mark.django_db


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def shown_messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


def contact_form(member, **values):
    """The member's contact form as the CX Manager posts it."""
    return {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "phone": member.phone,
        "birth_date": "",
        "joined_at_0": "2026-01-01",
        "joined_at_1": "10:00",
        **values,
    }


# Stale pages: a form opened before a merge elsewhere, then sent


def test_P6_M4_assigning_points_on_an_account_merged_meanwhile_says_why_nothing_was_given(
    client, login, make_member, staff
):
    # given: the agent has M-OLD's page open; another agent merges it into M-KEEP
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    definition = client.get(member_page(old)).context["assign_form"]["definition"].initial
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")
    before = ledger_state()

    # when: the agent sends the Assign points form of the page still open
    response = client.post(
        reverse("admin:members_member_assign_points", args=[old.pk]),
        {
            "points": 250,
            "reason": "Parcel late",
            "definition": definition.pk,
            "token": uuid.uuid4(),
        },
        follow=True,
    )

    # then: nothing is written, and the agent reads why (M4's refusal naming the survivor)
    assert ledger_state() == before
    html = response.content.decode()
    assert "use M-KEEP instead" in html, "the refusal is computed but never shown"


def test_M1_M6_a_merge_asked_on_an_account_merged_meanwhile_says_why_nothing_was_merged(
    client, login, make_member, staff
):
    # given: the agent has M-KEEP's page open; meanwhile M-KEEP itself is merged into M-NEW
    login("CX agent")
    keep, old, new = make_member("M-KEEP"), make_member("M-OLD"), make_member("M-NEW")
    client.get(member_page(keep))
    merge_members(survivor=new, duplicate=keep, by=staff, reason="Card re-issued")
    before = ledger_state()

    # when: the agent asks to merge M-OLD into M-KEEP (the page's merge form)
    response = client.post(
        reverse("admin:members_member_merge", args=[keep.pk]),
        {
            "merge-duplicate": "M-OLD",
            "merge-reason": "New e-mail address",
            "merge-token": uuid.uuid4(),
        },
        follow=True,
    )

    # then: nothing merged, and M6's refusal is on the page
    assert ledger_state() == before and not Member.objects.get(pk=old.pk).is_merged
    assert "merge into M-NEW instead" in response.content.decode()


def test_W3_M4_redeeming_on_an_account_merged_meanwhile_names_the_survivor_not_a_shortfall(
    client, login, make_member, staff, tiers
):
    # given: M-OLD had 1,000 points and its page is open; it is merged into M-KEEP
    load_catalogue(tiers)
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=1000, reason="Opening goodwill", by=staff)
    client.get(member_page(old))
    merge_members(survivor=keep, duplicate=old, by=staff, reason="New e-mail address")
    coffee = Reward.objects.get(name="Coffee voucher")

    # when: the agent picks the Coffee voucher on the page still open
    response = client.post(
        reverse("admin:members_member_redeem", args=[old.pk]),
        {"reward": coffee.pk, "token": uuid.uuid4()},
        follow=True,
    )

    # then: the agent is told the account is closed and where its points are, not that
    # the customer lacks points (they have 1,000 on M-KEEP)
    said = " ".join(text for _, text in shown_messages(response))
    assert not Redemption.objects.exists()
    assert "more points" not in said, said
    assert "use M-KEEP instead" in said, said


# Erasure (right to be forgotten)


def test_erasure_is_for_good_a_contact_form_opened_before_it_does_not_bring_the_data_back(
    client, admin_user, member
):
    # given: a superuser has Lucía's contact details open; another erases her on request
    Member.objects.filter(pk=member.pk).update(
        first_name="Lucía", last_name="Ortega", email="lucia.ortega@example.com"
    )
    member.refresh_from_db()
    client.force_login(admin_user)
    client.get(member_page(member))
    erase_member(member=member, by=admin_user)
    history = LogEntry.objects.count()

    # when: the open form is saved (say, a phone number was added)
    page = client.post(
        member_page(member), contact_form(member, phone="+34 600 000 000"), follow=True
    )

    # then: her personal data stays erased, and the page says nothing was saved (not
    # "changed successfully"), nor does the history record a change
    stored = Member.objects.get(pk=member.pk)
    assert (stored.first_name, stored.last_name, stored.phone) == ("", "", "")
    assert stored.email.endswith("@erased.invalid"), stored.email
    said = [str(message) for message in page.context["messages"]]
    assert said == [f"{stored} is erased: their personal data is gone, nothing was saved."]
    assert LogEntry.objects.count() == history


def test_erasing_a_member_and_the_account_merged_into_it_together_reports_no_error(
    admin_client, make_member, admin_user
):
    # given: M-OLD was merged into M-KEEP (enrolled later, so listed first)
    old, keep = make_member("M-OLD"), make_member("M-KEEP")
    merge_members(survivor=keep, duplicate=old, by=admin_user, reason="New e-mail address")

    # when: the superuser selects both in the member list and erases them
    response = admin_client.post(
        reverse("admin:members_member_changelist"),
        {"action": "erase", "_selected_action": [keep.pk, old.pk], "confirm": "yes"},
        follow=True,
    )

    # then: both are erased, and the page says so without an error about a token
    assert all(m.erased_at for m in Member.objects.filter(pk__in=[keep.pk, old.pk]))
    errors = [text for level, text in shown_messages(response) if level >= django_messages.ERROR]
    assert errors == [], errors


def test_the_erase_confirmation_names_the_merged_accounts_that_go_too(
    admin_client, make_member, admin_user, django_assert_max_num_queries
):
    # given: M-OLD was merged into M-KEEP; other members are chosen alongside
    old, keep = make_member("M-OLD"), make_member("M-KEEP")
    merge_members(survivor=keep, duplicate=old, by=admin_user, reason="New e-mail address")
    others = [make_member(f"M-X{i}") for i in range(5)]

    # when: the superuser chooses M-KEEP (and the others) and asks to erase
    with django_assert_max_num_queries(20):
        page = admin_client.post(
            reverse("admin:members_member_changelist"),
            {"action": "erase", "_selected_action": [keep.pk, *(m.pk for m in others)]},
        )

    # then: the confirmation says M-OLD is erased with it, and the birth date goes too
    html = page.content.decode()
    assert "M-OLD" in html and "merged into it" in html
    assert "birth date" in html
    assert not Member.objects.filter(erased_at__isnull=False).exists()


def test_erasure_replaces_the_freeze_reason_and_the_freeze_goes_on(member, staff, admin_user):
    # given: a member frozen for an illness (health data, typed by an agent)
    freeze_member(
        member=member, until=timezone.localdate() + timedelta(days=30), reason="Illness", by=staff
    )

    # when
    erase_member(member=member, by=admin_user)

    # then: the reason is gone, the freeze is not
    stored = Member.objects.get(pk=member.pk)
    assert "Illness" not in stored.freeze_reason
    assert stored.frozen_at(timezone.now())


def test_erasure_the_admin_history_stops_naming_the_erased_member(
    admin_client, admin_user, member, staff, tiers
):
    # given: a redemption of the member cancelled in the CX Manager
    load_catalogue(tiers)
    adjust_points(member=member, points=1000, reason="Goodwill", by=staff)
    redemption = redeem(member=member, reward=Reward.objects.get(name="Coffee voucher"), by=staff)
    admin_client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel", "_selected_action": [redemption.pk], "reason": "Never arrived"},
    )
    code = member.external_id

    # when: the member is erased
    erase_member(member=member, by=admin_user)

    # then: no history row, nor the dashboard's recent actions, shows the erased code
    assert not LogEntry.objects.filter(object_repr__contains=code).exists(), list(
        LogEntry.objects.values_list("object_repr", flat=True)
    )
    assert code not in admin_client.get(reverse("admin:index")).content.decode()


def test_erasure_removes_the_birth_date_with_the_other_personal_data(
    admin_client, admin_user, tiers, no_campaigns
):
    # given: a member enrolled with a birth date (for the birthday campaign)
    member = enroll_member(
        external_id="M-BDAY",
        email="ana@example.com",
        first_name="Ana",
        birth_date=date(1990, 4, 17),
    )

    # when
    erase_member(member=member, by=admin_user)

    # then: the birth date, personal data, is gone from the row and the member page
    assert Member.objects.get(pk=member.pk).birth_date is None
    assert "1990-04-17" not in admin_client.get(member_page(member)).content.decode()


# Contact edits and the ledger (P7)


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_P7_a_contact_edit_saved_while_points_are_added_keeps_the_balance_of_the_ledger(
    admin_client, member, staff, monkeypatch
):
    # given: while a superuser's "Save" of the member's phone is being processed, an
    # agent's adjustment of +250 (or a till's purchase) commits
    from loyalty_site.member_page import MemberForm

    checked = MemberForm.clean

    def clean_while_points_move(form):
        cleaned = checked(form)

        def adjust():
            try:
                adjust_points(member=member, points=250, reason="Parcel late", by=staff)
            finally:
                connections.close_all()

        thread = threading.Thread(target=adjust)
        thread.start()
        thread.join()
        return cleaned

    monkeypatch.setattr(MemberForm, "clean", clean_while_points_move)

    # when
    response = admin_client.post(member_page(member), contact_form(member, phone="+34 600"))

    # then: the phone is saved and the 250 points stay: the cached balance is the ledger's
    assert response.status_code == 302
    stored = Member.objects.get(pk=member.pk)
    ledger = LedgerEntry.objects.filter(member=member, redeemable=True).aggregate(s=Sum("points"))
    assert stored.phone == "+34 600"
    assert stored.points_balance == ledger["s"] == 250, (stored.points_balance, ledger["s"])
    call_command("check_ledger")


# Member search


@postgres_only
def test_member_search_the_member_picker_answers_any_typed_text_without_an_error_page(
    client, login, member
):
    # given: an agent on the dashboard's "Go to a member" picker
    login("CX agent")

    # when: the text typed (or pasted) holds a NUL character
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "points",
            "model_name": "ledgerentry",
            "field_name": "member",
            "term": "M-\x00",
        },
    )

    # then: an empty list, as the member list's own search gives, not a server error
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("listening", [True, False])
def test_the_erase_confirmation_says_whether_the_crm_is_told(admin_client, make_member, listening):
    # given: an endpoint listening for member.erased, or none
    if listening:
        save_endpoint(
            WebhookEndpoint(url="https://crm.example.com/hooks", events=["member.erased"])
        )
    member = make_member("M-GONE")

    # when: the superuser asks to erase M-GONE
    page = admin_client.post(
        reverse("admin:members_member_changelist"),
        {"action": "erase", "_selected_action": [member.pk]},
    )

    # then: the page says the CRM is sent the code only when one listens
    told = said(page.content.decode(), "endpoints-told")
    assert told == (
        "The webhook endpoints that listen for member.erased (the CRM, the messaging tools) "
        "are sent each customer code below, to forget it too."
        if listening
        else None
    )
