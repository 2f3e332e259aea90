"""Members in the plain admin: the lists in bounded queries, the member page and
the read-only ledger, enrolling from the add form, the joining date fixed."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member, TierChange
from points.models import LedgerEntry
from tests.conftest import postgres_only, run_together

pytestmark = pytest.mark.django_db


def test_member_list_shows_tiers_and_balances_in_bounded_queries(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    for _ in range(30):
        buy(make_member(), "1500")
    with django_assert_max_num_queries(12):
        page = client_admin.get(reverse("admin:members_member_changelist"))
    assert page.status_code == 200
    assert "Silver" in page.content.decode() and "1,600" in page.content.decode()
    assert b'value="delete_selected"' not in page.content  # members never vanish


def test_member_list_of_degraded_members_runs_bounded_queries(
    client_admin, make_member, buy, degradation, django_assert_max_num_queries
):
    # given 30 members degraded from Silver (their effective tier is not the qualified)
    from tiers.services import degrade_inactive_members

    start = timezone.now() - timedelta(days=200)
    for _ in range(30):
        buy(make_member(joined_at=start), "1000", when=start)
    assert degrade_inactive_members() == 30

    # then the list names both tiers of each, in as many queries as for one
    with django_assert_max_num_queries(12):
        page = client_admin.get(reverse("admin:members_member_changelist"))
    assert page.content.decode().count("Bronze (qualified Silver)") == 30


def test_member_page_shows_tier_history_and_the_ledger(client_admin, member, buy):
    buy(member, "1000")
    page = client_admin.get(reverse("admin:members_member_change", args=[member.pk])).content
    assert b"Upgrade" in page and b"Welcome to Silver" in page
    ledger = client_admin.get(
        reverse("admin:points_ledgerentry_changelist") + f"?member__id__exact={member.pk}"
    )
    assert ledger.status_code == 200 and b"Welcome to Silver" in ledger.content


def test_ledger_entries_are_read_only_in_the_admin(client_admin, member, buy):
    buy(member, "10")
    entry = LedgerEntry.objects.get(member=member)
    url = reverse("admin:points_ledgerentry_change", args=[entry.pk])
    page = client_admin.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client_admin.post(url, {"points": "9999"})
    assert LedgerEntry.objects.get(pk=entry.pk).points == 10
    assert client_admin.get(reverse("admin:points_ledgerentry_add")).status_code == 403
    assert (
        client_admin.post(
            reverse("admin:points_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_adding_a_member_in_the_admin_enrols_in_the_entry_tier(client_admin, tiers):
    response = client_admin.post(
        reverse("admin:members_member_add"),
        {
            "external_id": "M-NEW",
            "email": "new@example.com",
            "first_name": "Nora",
            "last_name": "Vidal",
            "phone": "",
            "joined_at_0": "2026-03-01",
            "joined_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content
    member = Member.objects.get(external_id="M-NEW")
    assert member.qualified_tier.code == "bronze"
    assert TierChange.objects.filter(member=member, reason="joined").exists()


# The add-member form of an agent at the desk, for a code the web shop enrols meanwhile.
DESK_FORM = {
    "external_id": "M-DUP",
    "email": "desk@example.com",
    "first_name": "Nora",
    "joined_at_0": "2026-03-01",
    "joined_at_1": "10:00",
}


def test_a_member_enrolled_by_another_door_while_the_form_is_saved_is_a_message(
    client_admin, tiers, monkeypatch
):
    # given: the web shop enrols the same code between the form's check and its save
    from loyalty_site import member_page
    from members.services import enroll_member

    def web_shop_first(**fields):
        enroll_member(external_id=fields["external_id"], email="shop@example.com")
        return enroll_member(**fields)

    monkeypatch.setattr(member_page, "enroll_member", web_shop_first)
    # when
    page = client_admin.post(reverse("admin:members_member_add"), DESK_FORM, follow=True)
    # then: the agent reads why, and the form wrote nothing (the simulated web shop's
    # enrolment shared its transaction here, so it is gone too)
    assert page.status_code == 200
    assert "Member with this Customer code already exists." in page.content.decode()
    assert not Member.objects.filter(email="desk@example.com").exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_code_enrolled_by_the_web_shop_while_the_form_is_saved_keeps_what_the_agent_typed(
    client_admin, tiers, monkeypatch
):
    # given: the web shop enrols (and commits) the same code between the form's check
    # and its save
    from loyalty_site import member_page
    from members.services import enroll_member

    def web_shop_first(**fields):
        run_together(1, lambda _: enroll_member(external_id="M-DUP", email="shop@example.com"))
        return enroll_member(**fields)

    monkeypatch.setattr(member_page, "enroll_member", web_shop_first)
    # when
    page = client_admin.post(reverse("admin:members_member_add"), DESK_FORM)
    # then: the form again, with what the agent typed and why it cannot be saved
    assert page.status_code == 200
    html = page.content.decode()
    assert "Member with this Customer code already exists." in html
    assert 'value="desk@example.com"' in html and 'value="Nora"' in html
    assert Member.objects.get(external_id="M-DUP").email == "shop@example.com"


def test_lists_write_times_on_the_24_hour_clock_as_the_member_pages_do(client_admin, member, buy):
    buy(member, "1200", when=timezone.now().replace(hour=22, minute=5))
    page = client_admin.get(reverse("admin:members_tierchange_changelist")).content.decode()
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2}<", page)
    assert "p.m." not in page and "a.m." not in page


def test_the_joining_date_is_fixed_once_enrolled(admin_client, make_member):
    # given a member who joined on 1 March (inactivity counts from it, history is dated by it)
    from tests.conftest import at

    member = make_member("M-J", joined_at=at("2026-03-01"))
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))
    form = page.context["adminform"].form

    # when the change form is sent with another date
    admin_client.post(
        reverse("admin:members_member_change", args=[member.pk]),
        {**{name: form[name].value() or "" for name in form.fields}, "joined_at_0": "2026-06-01"},
    )

    # then it stays, and the page offers no field to change it
    member.refresh_from_db()
    assert member.joined_at == at("2026-03-01")
    assert "joined_at" not in form.fields


@pytest.mark.parametrize("typed", ["12/20/1990", "1990-02-30"])
def test_a_birth_date_typed_month_first_or_impossible_is_refused_naming_the_format(
    admin_client, make_member, typed
):
    # given a member's page, sent with a birth date the form cannot read
    from datetime import date

    member = make_member("M-B")
    Member.objects.filter(pk=member.pk).update(birth_date=date(1990, 6, 7))
    url = reverse("admin:members_member_change", args=[member.pk])
    form = admin_client.get(url).context["adminform"].form

    page = admin_client.post(
        url, {**{name: form[name].value() or "" for name in form.fields}, "birth_date": typed}
    )

    # then the agent is told how to write it, and nothing changes
    assert "Enter a real date, as 2026-12-20 (year, month, day) or 20/12/2026 (day first)." in (
        page.content.decode()
    )
    member.refresh_from_db()
    assert member.birth_date == date(1990, 6, 7)
