"""The admin's transactions import page (preview, confirm, size limit, permission)
and the exports."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from members.models import Member
from points.models import Transaction
from tests.conftest import (
    at,
)
from tests.points.transaction_files import HEADER, upload_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def upload(client, text, name="t.csv"):
    return upload_bytes(client, (HEADER + text).encode(), name)


def test_the_admin_import_previews_errors_then_confirms_with_a_summary(admin_client, alice):
    from django.urls import reverse

    page = upload(
        admin_client,
        "T-1,M-0001,purchase,10.001,2026-03-01,,,\n"
        "T-2,M-9,purchase,5,2026-03-01,,,\n"
        "T-3,M-0001,purchase,5,x,fax,,\n",  # two wrong cells: one row
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing was imported: 3 rows cannot be imported" in html
    assert "more than two decimals" in html and "no member with customer code" in html
    assert "is not a date (2026-11-01)" in html
    assert not Transaction.objects.exists()

    page = upload(
        admin_client,
        "T-1,M-0001,purchase,1000,2026-03-01,,,\nT-2,M-0001,purchase,10,2026-03-02,,,\n",
    )
    html = page.content.decode()
    assert "<strong>2</strong> new" in html and "will earn <strong>1,015</strong> points" in html
    assert "tier-up bonuses and referrals will give <strong>100</strong>" in html
    assert "1 member changing tier" in html
    assert not Transaction.objects.exists()  # the preview writes nothing
    confirm = page.context["confirm_form"].initial
    done = admin_client.post(
        reverse("admin:points_transaction_process_import"), confirm, follow=True
    )
    assert (
        "Import finished: 2 new, 0 skipped; purchases earned 1,015 points, returns took back 0, "
        "tier-up bonuses and referrals gave 100; 1 member changed tier." in done.content.decode()
    )
    assert Transaction.objects.count() == 2
    call_command("check_ledger")
    from django.contrib.admin.models import LogEntry

    logged = LogEntry.objects.get(object_repr="Transactions import")
    assert logged.user.username == "admin" and "2 new" in logged.change_message


def test_a_file_that_became_wrong_since_its_preview_says_so_at_the_confirm(admin_client, alice):
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    from points.services import record_purchase, record_return

    # given: a file returning 60.00 of a purchase of 100.00, previewed as fine
    record_purchase(
        member=alice, amount=Decimal("100"), occurred_at=at("2026-03-01"), external_id="P-1"
    )
    page = upload(admin_client, "R-1,M-0001,return,60,2026-03-05,,,P-1\n")
    assert "<strong>1</strong> new" in page.content.decode()
    # and meanwhile a till returns 60.00 of it: 40.00 is left
    record_return(
        member=alice,
        amount=Decimal("60"),
        occurred_at=at("2026-03-04"),
        external_id="R-TILL",
        original_external_id="P-1",
    )
    # when the operator confirms
    done = admin_client.post(
        reverse("admin:points_transaction_process_import"),
        page.context["confirm_form"].initial,
        follow=True,
    )
    # then: nothing imported, no "Import finished", and why
    html = done.content.decode()
    assert "Import finished" not in html
    assert "Nothing was imported: since the preview, 1 row became wrong: line 2, amount" in html
    assert not Transaction.objects.filter(external_id="R-1").exists()
    assert not LogEntry.objects.filter(object_repr="Transactions import").exists()


def test_the_admin_refuses_large_files_and_points_to_the_upload_page(admin_client, alice, settings):
    from points import admin as points_admin

    settings_limit = points_admin.ADMIN_IMPORT_MAX_MB
    points_admin.ADMIN_IMPORT_MAX_MB = 0.0001  # about 100 bytes
    try:
        page = upload(admin_client, "T-1,M-0001,purchase,10,2026-03-01,,,\n" * 5)
    finally:
        points_admin.ADMIN_IMPORT_MAX_MB = settings_limit
    assert "go through Imports › Upload a file" in page.content.decode()
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("dangerous", ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_exports_escape_cells_a_spreadsheet_would_run(alice, buy, dangerous):
    from members.resources import MemberResource
    from points.resources import TransactionResource

    Member.objects.filter(pk=alice.pk).update(first_name=dangerous, last_name="-12.5")
    buy(alice, "10", store=dangerous[:50])
    members = MemberResource().export()
    row = members.dict[0]
    assert row["first_name"] == "'" + dangerous
    assert row["last_name"] == "-12.5"  # a number stays a number
    transactions = TransactionResource().export()
    assert transactions.dict[0]["store"] == "'" + dangerous
    assert transactions.headers == list(HEADER.strip().split(","))


def test_the_export_pages_open(admin_client, alice):
    from django.urls import reverse

    assert admin_client.get(reverse("admin:members_member_export")).status_code == 200
    assert admin_client.get(reverse("admin:points_transaction_export")).status_code == 200


def test_importing_needs_the_add_transaction_permission(client, django_user_model, alice):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_transaction"))
    client.force_login(clerk)
    assert client.get(reverse("admin:points_transaction_import")).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="add_transaction"))
    clerk = django_user_model.objects.get(pk=clerk.pk)
    client.force_login(clerk)
    assert client.get(reverse("admin:points_transaction_import")).status_code == 200


def test_a_file_wrong_throughout_shows_its_first_1000_bad_rows_once_each(admin_client, alice):
    """Found by a review: every bad row was listed twice and without end (a file of
    115,000 bad rows made a page of 131 MB, in 18 s)."""
    rows = "".join(f"T-{i},M-NOPE-{i},purchase,1,2026-03-01,,,\n" for i in range(1005))

    html = upload(admin_client, rows).content.decode()

    assert "Nothing was imported: 1,005 rows cannot be imported" in html
    assert "The first 1,000 errors are below; 5 more are not." in html
    assert html.count("no member with customer code") == 1000
    assert "M-NOPE-999" in html and "M-NOPE-1000" not in html
    assert "Some rows failed to validate" not in html  # the library's table of them too


def test_an_exported_file_imports_again_as_already_imported(client, login, make_member, buy):
    """Found by an audit of clock changes: the export wrote times on the local clock
    without their offset or fraction of a second, so the two 02:30s of the night the
    clocks go back read alike, and the file was refused when imported again (the import
    asks such a time's offset; 11:00:00 is not the 11:00:00.25 the till sent)."""
    from datetime import UTC, datetime

    from django.urls import reverse

    from tests.conftest import local_time

    member = make_member(joined_at=at("2026-10-01"))
    summer = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 in Madrid, before the change
    buy(member, "100", when=summer, external_id="T-SUMMER")
    buy(member, "100", when=summer + timedelta(hours=1), external_id="T-WINTER")  # 02:30 again
    buy(member, "100", when=local_time("2026-11-02 11:00:00.25"), external_id="T-FRACTION")
    login("Operations")
    export = client.post(
        reverse("admin:points_transaction_export"),
        {"format": "0", "resource": "0"}
        | {f"transactionresource_{column}": "on" for column in HEADER.strip().split(",")},
    )
    text = export.content.decode("utf-8-sig")
    assert ",2026-10-25T02:30:00+02:00,api,," in text  # T-SUMMER
    assert ",2026-10-25T02:30:00+01:00,api,," in text  # T-WINTER
    assert ",2026-11-02T11:00:00.250000+01:00,api,," in text
    page = upload_bytes(client, export.content)
    assert (
        "3 rows: <strong>0</strong> new,\n  3 already imported (skipped)" in page.content.decode()
    )


def test_an_exported_file_whose_cells_a_spreadsheet_would_run_imports_again_as_imported(
    client, login, make_member, buy
):
    """Found by an audit of the contracts: the export quotes a cell a spreadsheet would
    run ("+T-1001" written "'+T-1001"), and the import read the quote as part of the id:
    the same purchase imported again was paid a second time."""
    from django.urls import reverse

    from points.models import Transaction
    from tests.conftest import give_return

    member = make_member(joined_at=at("2026-10-01"))
    bought = buy(member, "100", external_id="+T-1001", store="@12")
    give_return(member, bought, "10", external_id="=R-1")
    login("Operations")
    export = client.post(
        reverse("admin:points_transaction_export"),
        {"format": "0", "resource": "0"}
        | {f"transactionresource_{column}": "on" for column in HEADER.strip().split(",")},
    )
    assert "'+T-1001," in export.content.decode("utf-8-sig")  # safe in a spreadsheet

    page = upload_bytes(client, export.content)

    assert "2 rows: <strong>0</strong> new,\n  2 already imported (skipped)" in (
        page.content.decode()
    )
    assert Transaction.objects.count() == 2
