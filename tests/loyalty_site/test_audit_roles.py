"""Audit of roles and permissions in the CX Manager: every admin page and action as each
staff group (and staff in no group), GET and POST. What it found, each a test."""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

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
