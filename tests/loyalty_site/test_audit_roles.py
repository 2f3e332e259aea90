"""Audit of roles and permissions in the CX Manager: every admin page and action as each
staff group (and staff in no group), GET and POST. What it found, each a test."""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from points.services import adjust_points
from rewards.services import redeem
from tests.conftest import at, summary
from tests.loyalty_site.cx_pages import assign, member_page

pytestmark = pytest.mark.django_db


# Exporting a list (django-import-export) exports it as filtered: a filter the list
# cannot place is the list's own "?e=1" page, as on the list, never a 500.


EXPORT_FORM = {"format": "0", "resource": "0", "transactionresource_external_id": "on"}


def export_as(client, query):
    """The export page opened with `query`, and its form sent with it."""
    url = reverse("admin:points_transaction_export")
    page = client.get(url, query)
    sent = client.post(f"{url}?{urlencode(query)}", EXPORT_FORM)
    return page, sent


def refused_as_the_list_refuses(response) -> bool:
    return response.status_code == 302 and response.url == (
        reverse("admin:points_transaction_changelist") + "?e=1"
    )


@pytest.mark.parametrize("role", ["CX agent", "Marketer", "Operations", "CX supervisor"])
def test_exporting_transactions_with_an_unknown_filter_gives_the_lists_page_to_every_role(
    client, login, member, buy, role
):
    # given
    buy(member, "100")
    login(role)

    # when: a parameter that is no field of a transaction
    page, sent = export_as(client, {"format": "csv"})

    # then
    assert refused_as_the_list_refuses(page) and refused_as_the_list_refuses(sent)


@pytest.mark.parametrize(
    "query",
    [
        {"kind": "\x00"},  # PostgreSQL cannot compare a NUL
        {"amount__gte": "abc"},
        {"member__id__exact": "99999999999999999999"},  # SQLite cannot hold it
    ],
)
def test_exporting_transactions_with_a_filter_the_database_cannot_use_is_no_500(
    client, login, member, buy, query
):
    # given
    buy(member, "100")
    login("Operations")

    # when
    page, sent = export_as(client, query)

    # then: the list's own page, or an export of no rows
    for response in (page, sent):
        assert response.status_code == 200 or refused_as_the_list_refuses(response)


def test_exporting_transactions_as_filtered_on_the_list_still_exports_them(
    client, login, member, buy
):
    # given
    buy(member, "100", external_id="T-EXPORTED")
    login("Operations")

    # when
    export = client.post(
        reverse("admin:points_transaction_export") + "?kind__exact=purchase",
        EXPORT_FORM,
    )

    # then
    assert export.status_code == 200 and "T-EXPORTED" in export.content.decode()


def test_exporting_members_with_an_unknown_filter_gives_the_lists_page(admin_client, member):
    page = admin_client.get(reverse("admin:members_member_export"), {"format": "csv"})
    assert page.status_code == 302
    assert page.url == reverse("admin:members_member_changelist") + "?e=1"


# The member page's forms post to their own address, and a form sent with a mistake
# (or a confirmation) is shown there. Opened again from the address bar, that address
# is the member page for whoever may use the form, never "not for your role".

MEMBER_FORMS = [
    "members_member_assign_points",
    "members_member_redeem",
    "members_member_merge",
    "members_member_status_match",
    "members_member_end_status_match",
    "members_member_freeze",
    "members_member_unfreeze",
]


def test_an_agent_who_reopens_the_address_of_a_refused_assignment_gets_the_member_page(
    client, login, member
):
    # given: an assignment sent without a reason, shown again at the form's address
    login("CX agent")
    refused = assign(client, member, 250, reason="")
    assert refused.status_code == 200 and "Say why the points are adjusted." in (
        refused.content.decode()
    )

    # when: the agent opens that address again
    page = client.get(reverse("admin:members_member_assign_points", args=[member.pk]), follow=True)

    # then: the member page with its form; nothing assigned
    text = page.content.decode()
    assert page.status_code == 200 and "not for your role" not in text
    assert page.redirect_chain == [(member_page(member), 302)]
    assert 'value="Assign points"' in text
    assert summary(member)["available"] == 0


@pytest.mark.parametrize("name", MEMBER_FORMS)
def test_the_address_of_each_member_page_form_opened_by_a_supervisor_is_the_member_page(
    client, login, member, name
):
    # given
    login("CX supervisor")

    # when
    page = client.get(reverse(f"admin:{name}", args=[member.pk]))

    # then
    assert page.status_code == 302 and page.url == member_page(member)


def test_a_marketer_who_opens_the_address_of_a_form_gets_no_form(client, login, member):
    # given
    login("Marketer")

    # when
    page = client.get(reverse("admin:members_member_assign_points", args=[member.pk]), follow=True)
    sent = client.post(reverse("admin:members_member_assign_points", args=[member.pk]), {})

    # then: the member page as a marketer sees it; posting is still refused
    assert page.status_code == 200 and 'value="Assign points"' not in page.content.decode()
    assert sent.status_code == 403
    assert summary(member)["available"] == 0


# A voucher's code is money at a till: the member page shows it to those who may see
# redemptions (CX agents, marketers), not to Operations, who import files.


@pytest.mark.parametrize("role, shown", [("CX agent", True), ("Operations", False)])
def test_W5_the_member_page_shows_voucher_codes_only_to_those_who_see_redemptions(
    client, login, member, staff, catalogue, role, shown
):
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = redeem(member=member, reward=catalogue["Coffee voucher"])
    login(role)

    html = client.get(member_page(member)).content.decode()

    assert 'id="redemptions"' in html and "Coffee voucher" in html
    assert (voucher.shown_code in html) is shown


def test_the_as_of_panel_says_1_point_not_1_points(client, login, member, buy):
    buy(member, "999", when=at("2026-03-02"))  # 999 points: 1 short of Silver
    login("CX agent")

    html = client.get(member_page(member) + "?as_of=2026-03-03").content.decode()

    assert "; 1 point to Silver." in html
