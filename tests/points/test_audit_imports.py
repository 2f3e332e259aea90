"""Audit of the bulk CSV imports (purchases and returns, members) as operations staff
meet them. Each test states what the user should see; each fails on the current code
because of a defect named in its docstring."""

import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import ImportBatch
from members.models import Member
from points.member_rows import read_members
from points.models import Transaction
from points.resources import read_transactions
from points.services import import_members, import_transactions

pytestmark = pytest.mark.django_db

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
MEMBERS_HEADER = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime\n"
)


def run(text, *, header=HEADER):
    rows, errors = read_transactions(io.BytesIO((header + text).encode()))
    return import_transactions(rows, errors=errors)


def run_members(text):
    rows, errors = read_members(io.BytesIO((MEMBERS_HEADER + text).encode()))
    return import_members(rows, errors=errors)


def upload_batch(client, kind, text, name="file.csv"):
    return client.post(
        reverse("admin:core_importbatch_upload"),
        {"kind": kind, "file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


def upload_to_transaction_page(client, text):
    return client.post(
        reverse("admin:points_transaction_import"),
        {
            "import_file": SimpleUploadedFile("day.csv", (HEADER + text).encode(), "text/csv"),
            "format": "0",
        },
    )


def test_a_staff_user_given_can_add_member_can_follow_and_confirm_their_members_import(
    client, django_user_model, tiers, media, django_capture_on_commit_callbacks
):
    """docs/rules.md, "Importing members": "A superuser (or a staff user given 'Can add
    member') can enrol members ... from one CSV file", and "Every page and action checks
    its own permission". A migration lead given exactly "Can add member" is offered the
    upload page and can upload a file; the file is checked, and then their own import's
    page answers 403 Forbidden, and so does "Confirm the import": the members can never
    be imported by them. The batch pages require core.view_importbatch, a permission the
    rule never names, on top of the kind's own (batch_admin.ImportBatchAdmin._batch)."""
    user = django_user_model.objects.create_user("migration-lead", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="members", codename="add_member")
    )
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_batch(client, "members", MEMBERS_HEADER + "M-1,ana@example.com,,,,,,,\n")
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.CHECKED

    page = client.get(reverse("admin:core_importbatch_change", args=[batch.pk]))
    assert page.status_code == 200  # their own import's page: what it will do, Confirm
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))
    assert Member.objects.filter(external_id="M-1").exists()


def test_a_staff_user_given_can_add_member_does_not_see_a_transactions_import(
    client, django_user_model, admin_user, tiers, media
):
    """The kind's own permission opens that kind's imports only: a file of purchases
    stays closed to a migration lead who may add members."""
    user = django_user_model.objects.create_user("migration-lead", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="members", codename="add_member")
    )
    batch = ImportBatch.objects.create(
        kind=ImportBatch.Kind.TRANSACTIONS, file_name="day.csv", uploaded_by=admin_user
    )
    client.force_login(user)

    assert client.get(reverse("admin:core_importbatch_change", args=[batch.pk])).status_code == 403
    confirm = client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))
    assert confirm.status_code == 403


def test_a_members_file_with_an_invisible_character_in_a_known_code_does_not_enrol_a_lookalike(
    alice,
):
    """A members file pasted together from a web page or an e-mail often carries a
    zero-width space. "M-0001<ZWSP>" looks exactly like the known customer M-0001 on
    screen and in Excel, yet the import enrols a second member under it (new=1): the
    customer now has two accounts that the admin lists side by side with the same code,
    one of which no till, web shop or API call can ever name. DESIGN "Imports ... members:
    enrols new members and updates the contact details of known ones"; rules.md treats
    the invisible characters a paste brings as nothing a reader can see (codes of
    vouchers, reasons). The row should update M-0001 or be refused, naming line 2 and
    external_id. Cause: member_rows.parse_row only str.strip()s the code, and
    members.models.addressable_code accepts format characters (Cf)."""
    report = run_members("M-0001\u200b,new-address@example.com,Alice,,,,,,\n")

    assert not Member.objects.filter(external_id__contains="\u200b").exists()
    assert Member.objects.count() == 1
    assert report.new == 0
    assert [(e.line, e.column) for e in report.errors] == [(2, "external_id")]
    assert "U+200B ZERO WIDTH SPACE, character 7" in report.errors[0].reason


def test_a_transactions_file_with_an_invisible_character_in_an_id_is_refused(alice):
    """The same paste in a file of purchases: "T-1<ZWSP>" would be recorded beside a
    visible "T-1" and a second import of the file would not find it imported (P8)."""
    report = run("T-1\u200b,M-0001,purchase,10.00,2026-03-01,,,\n")

    assert not Transaction.objects.exists()
    assert [(e.line, e.column) for e in report.errors] == [(2, "external_id")]
    assert "invisible character (U+200B ZERO WIDTH SPACE, character 4)" in report.errors[0].reason


def test_a_header_that_names_a_column_twice_is_refused_not_read_from_its_last_copy(alice):
    """An operator's spreadsheet has two "amount" columns (the gross amount, and the
    amount after a discount someone added at the end). The import takes the LAST one
    without a word: the purchase is recorded at 999.00 and earns 999 points, though
    the contract's amount column says 10.00. A header with a column twice is ambiguous;
    DESIGN's CSV contract has each column once and "A file with any invalid row imports
    nothing and lists every bad row with its line number and reason". Expected: nothing
    imported, line 1 / amount named. Cause: points.resources._rows builds
    `position = {name: i ...}`, where a later duplicate silently wins (the same in
    points.member_rows._rows); csv_files.open_csv never checks for repeated names."""
    report = run(
        "T-1,M-0001,purchase,10.00,2026-03-01,,,,999\n",
        header=HEADER.strip() + ",amount\n",
    )

    assert not Transaction.objects.exists()
    assert [str(e) for e in report.errors] == [
        "line 1, amount: the header names this column 2 times (columns 4 and 9): keep one"
    ]


def test_a_return_whose_purchase_is_on_a_wrong_line_is_not_said_to_name_no_purchase(alice):
    """A file has a purchase T-1 on line 2 with an amount written "12,50" (wrong) and
    its return R-1 on line 3 (right). The import lists line 2, amount (correct) and
    also "line 3, original_external_id: M-0001 has no purchase 'T-1'", though T-1 is
    on the line just above. The operator is sent to chase a purchase that is there;
    once line 2 is corrected, line 3 imports as it was. rules.md "Importing
    transactions": every *wrong* row is listed, and an id wrong on its first line is
    still recognised "so one correction of the file is enough". Cause:
    points.services.importing.import_transactions looks the original up only among the
    staged (good) rows and the database; the bad rows' ids (csv_rows.ids_of_bad_rows)
    are not consulted for returns."""
    report = run(
        'T-1,M-0001,purchase,"12,50",2026-03-01,,,\nR-1,M-0001,return,5,2026-03-02,,,T-1\n'
    )

    assert any(error.line == 2 and error.column == "amount" for error in report.errors)
    assert not [e for e in report.errors if e.line == 3 and "has no purchase" in e.reason], [
        str(e) for e in report.errors
    ]


def test_a_return_whose_purchase_names_an_unknown_member_is_not_listed_with_it(alice):
    """The same when the purchase's line is wrong only against the database (a customer
    code mistyped): that line is the one to correct."""
    report = run("T-1,M-9999,purchase,12.50,2026-03-01,,,\nR-1,M-0001,return,5,2026-03-02,,,T-1\n")

    assert [(e.line, e.column) for e in report.errors] == [(2, "member")]


def test_a_semicolon_separated_file_is_not_reported_as_missing_every_column(alice):
    """Excel set to Spanish (the brand's own locale, Europe/Madrid) saves "CSV" with
    semicolons. The operator uploads it and is told eight times "line 1, ...: missing
    column" (external_id, member, kind, ...), each a column they can see in line 1.
    Refusing the file is right (DESIGN: comma-separated) but the reason is false and
    does not say what to do; the import's own rule is that a bad line is named "with
    its line, column and reason" a user can act on. Expected: no claim that columns
    present in the header are missing (e.g. "the header is separated by semicolons:
    save the file comma-separated"). Cause: points.csv_files.open_csv reports every
    required column absent from a header read with ',' only."""
    report = run(
        "T-1;M-0001;purchase;10.00;2026-03-01;;;\n",
        header=HEADER.replace(",", ";"),
    )

    assert report.errors and not Transaction.objects.exists()
    assert not [e for e in report.errors if e.reason == "missing column"], [
        str(e) for e in report.errors
    ]
    assert [str(e) for e in report.errors] == [
        "line 1, file: the header is separated by semicolons, not commas: save the file "
        "comma-separated (in Excel: CSV UTF-8 (Comma delimited))"
    ]


def test_a_tab_separated_file_is_told_to_be_saved_comma_separated(alice):
    report = run(
        "T-1\tM-0001\tpurchase\t10.00\t2026-03-01\t\t\t\n", header=HEADER.replace(",", "\t")
    )

    assert [(e.line, e.column) for e in report.errors] == [(1, "file")]
    assert "separated by tabs" in report.errors[0].reason


def test_a_header_in_capitals_with_spaces_is_read_as_the_contract_names(alice):
    """A spreadsheet's header typed "External_ID, Member ,KIND,...": the same columns."""
    header = " External_ID,Member ,KIND,Amount,Occurred_At,Channel,Store,Original_External_ID\n"
    report = run("T-1,M-0001,purchase,10.00,2026-03-01,,,\n", header=header)

    assert not report.errors and report.new == 1
    assert Transaction.objects.get().amount == 10


def test_the_imports_page_counts_bad_rows_not_messages(
    login, client, alice, media, django_capture_on_commit_callbacks
):
    """Operations upload a 2-row file whose second row has three wrong cells (amount,
    date, channel). The Imports page says "3 rows cannot be imported; nothing was
    written", and the Imports list shows the file with 4 rows: the file has 2 rows and
    1 bad one. rules.md "Importing transactions": the page shows "every wrong row" and
    "what the import will do (rows, ...)"; a count of rows that is really a count of
    messages misleads the operator about how much of the file is wrong. Cause:
    core/importbatch/batch.html prints batch.error_count (messages) as rows, and
    points.services.importing.import_transactions adds len(errors) (messages) to
    report.rows."""
    login("Operations")
    text = HEADER + (
        "T-1,M-0001,purchase,10.00,2026-03-01,,,\nT-2,M-0001,purchase,ten,someday,fax,,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload_batch(client, "transactions", text)
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.INVALID
    html = client.get(reverse("admin:core_importbatch_change", args=[batch.pk])).content.decode()

    shown = " ".join(html.split())
    assert "1 row cannot be imported" in shown, re.search(r"\d+ rows? cannot be imported", shown)
    assert batch.rows == 2


def test_a_file_of_returns_is_not_reported_as_negative_points_awarded(admin_client, alice, buy):
    """Operations import the day's returns through Transactions > Import. The preview
    says "-500 points to award" and, after Confirm, "Import finished: 1 new, 0 skipped,
    -500 points awarded": nothing was awarded, 500 points were taken back (P4). The
    result message is what staff read to check a file (DESIGN: the import page "lists
    the same messages"); a negative award reads as a bug or a typo. Cause:
    points.admin.TransactionAdmin.add_success_message and
    templates/admin/points/transaction/import.html print ImportReport.points, the net
    of earnings and return reversals, as "awarded"."""
    buy(alice, "500", external_id="P-OLD")
    page = upload_to_transaction_page(admin_client, "R-1,M-0001,return,500,2026-03-05,,,P-OLD\n")
    done = admin_client.post(
        reverse("admin:points_transaction_process_import"),
        page.context["confirm_form"].initial,
        follow=True,
    )
    shown = " ".join(page.content.decode().split()) + " ".join(done.content.decode().split())

    assert Transaction.objects.filter(external_id="R-1").exists()
    negative_award = re.compile(r"-[\d,]+(</strong>)? points (awarded|to award)")
    assert not negative_award.search(shown), negative_award.search(shown).group(0)
    assert "returns will take back <strong>500</strong>" in shown
    assert "purchases earned 0 points, returns took back 500" in shown


def test_the_command_reports_points_taken_back_by_returns(alice, buy, tmp_path, capsys):
    from django.core.management import call_command

    buy(alice, "500", external_id="P-OLD")
    path = tmp_path / "returns.csv"
    path.write_text(HEADER + "R-1,M-0001,return,500,2026-03-05,,,P-OLD\n")
    call_command("import_transactions", str(path))

    out = capsys.readouterr().out
    assert (
        "1 row: purchases earned 0 points, returns took back 500, "
        "tier-up bonuses and referrals gave 0, 0 members" in out
    )


def test_an_import_through_the_transactions_page_is_kept_in_the_imports_list(admin_client, alice):
    """Operations import a file through Transactions > Import (preview, Confirm): the
    rows are written, but the "Imports" list never shows it, and its transactions and
    ledger entries name no batch, so "Its transactions" and "who imported march.csv,
    when" cannot be answered from the CX Manager. DESIGN "Imports and grants": "An
    'Imports' list keeps each batch: file, who, when, status, counts, duration,
    errors; its transactions and ledger entries name the batch"; rules.md: "Every
    import stays in the list". Cause: points.resources.TransactionResource.import_data
    calls import_transactions without a core.ImportBatch (only a LogEntry is written in
    points.admin.TransactionAdmin.add_success_message)."""
    page = upload_to_transaction_page(admin_client, "T-1,M-0001,purchase,10.00,2026-03-01,,,\n")
    admin_client.post(
        reverse("admin:points_transaction_process_import"),
        page.context["confirm_form"].initial,
        follow=True,
    )
    txn = Transaction.objects.get(external_id="T-1")

    batch = ImportBatch.objects.filter(kind=ImportBatch.Kind.TRANSACTIONS).first()
    assert batch is not None and batch.uploaded_by.username == "admin"
    assert txn.batch_id == batch.pk
    assert (batch.file_name, batch.status, batch.imported_by, batch.new) == (
        "day.csv",
        ImportBatch.Status.DONE,
        batch.uploaded_by,
        1,
    )
    assert batch.file.read().decode() == HEADER + "T-1,M-0001,purchase,10.00,2026-03-01,,,\n"
    assert ImportBatch.objects.count() == 1  # the preview alone is not an import
