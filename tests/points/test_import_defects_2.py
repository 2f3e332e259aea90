"""Imports as operations staff meet them: what a file whose header alone is wrong, a
row split by a thousands separator, a UTF-16 file and a file re-sent after an erasure
show on the CX Manager's pages and the command; the Imports link of an import's page
for a user who may import only one kind of file."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from core.models import ImportBatch
from members.services import erase_member
from points.models import Transaction
from tests.conftest import ledger_state

pytestmark = pytest.mark.django_db

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
MEMBERS_HEADER = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime\n"
)
Status = ImportBatch.Status


@pytest.fixture
def staff_with(client, django_user_model):
    """Log in a staff user who has only these permissions ("members.add_member")."""

    def login(*names):
        user = django_user_model.objects.create_user("importer", is_staff=True)
        for name in names:
            app, codename = name.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app, codename=codename)
            )
        client.force_login(user)
        return user

    return login


def upload(client, data: bytes, kind="transactions", name="day.csv"):
    return client.post(
        reverse("admin:core_importbatch_upload"),
        {"kind": kind, "file": SimpleUploadedFile(name, data, "text/csv")},
    )


def text(response) -> str:
    """A page's text as read on screen: tags out, entities and spaces as shown."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    words = re.sub(r"<[^>]+>", " ", page)
    return " ".join(words.replace("&quot;", '"').replace("&#x27;", "'").split())


def batch_page(client, batch) -> str:
    return text(client.get(reverse("admin:core_importbatch_change", args=[batch.pk])))


def command(tmp_path, capsys, data: bytes, name="import_transactions", options=()):
    """Run an import command on a file; (exit status, stdout lines, stderr lines)."""
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    try:
        call_command(name, str(path), *options)
        status = 0
    except SystemExit as stopped:
        status = stopped.code
    out, err = capsys.readouterr()
    return status, out.strip().splitlines(), err.strip().splitlines()


# 1. A file whose header alone is wrong: the file cannot be imported, no row counted.

WRONG_HEADERS = {
    "semicolons": (
        HEADER.replace(",", ";") + "T-1;M-0001;purchase;10.00;2026-03-01;;;\n",
        "1 file the header is separated by semicolons, not commas",
    ),
    "a required column missing": (
        HEADER.replace(",amount", "") + "T-1,M-0001,purchase,2026-03-01,,,\n",
        "1 amount missing column",
    ),
    "a column more (notes)": (
        HEADER.rstrip("\n") + ",notes\nT-1,M-0001,purchase,10.00,2026-03-01,,,,late\n",
        "1 notes unknown column: the columns are external_id, member, kind, amount, "
        "occurred_at, channel, store, original_external_id",
    ),
}


@pytest.mark.parametrize("data, reason", WRONG_HEADERS.values(), ids=WRONG_HEADERS.keys())
def test_a_file_whose_header_is_wrong_is_said_to_be_unreadable_not_to_have_a_bad_row(
    login, client, alice, on_commit, data, reason
):
    # given an operator's file whose header is not the contract's
    login("Operations")
    before = ledger_state()

    # when it is uploaded and checked
    on_commit(lambda: upload(client, data.encode()))

    # then its page says the file cannot be imported because of its header, and why;
    # no row is counted, on the page or in the list of imports
    batch = ImportBatch.objects.get()
    shown = batch_page(client, batch)
    assert batch.status == Status.INVALID
    assert "The file cannot be imported: its header (line 1) is wrong" in shown
    assert reason in shown  # the error table: line, column, reason
    assert not re.search(r"\d+ rows? cannot be imported", shown), shown
    assert (batch.rows, batch.error_count) == (0, 0)
    listed = text(client.get(reverse("admin:core_importbatch_changelist")))
    assert "day.csv Transactions" in listed and "Has errors 0 0 the header" in listed
    assert ledger_state() == before


def test_a_file_whose_header_is_wrong_is_said_so_on_the_transactions_import_page(
    admin_client, alice
):
    page = admin_client.post(
        reverse("admin:points_transaction_import"),
        {
            "import_file": SimpleUploadedFile(
                "day.csv", WRONG_HEADERS["semicolons"][0].encode(), "text/csv"
            ),
            "format": "0",
        },
    )

    shown = text(page)
    assert "Nothing was imported: the file cannot be read, because of its header" in shown
    assert "separated by semicolons, not commas" in shown
    assert "Some rows failed to validate" not in shown
    assert not Transaction.objects.exists()


def test_a_file_with_a_bad_row_still_counts_its_bad_rows(login, client, alice, on_commit):
    login("Operations")
    on_commit(lambda: upload(client, (HEADER + "T-1,M-0001,refund,10,2026-03-01,,,\n").encode()))

    batch = ImportBatch.objects.get()
    assert "1 row cannot be imported" in batch_page(client, batch)
    assert (batch.rows, batch.error_count) == (1, 1)


# 2. The "Imports" link of an import's page, for a user who may import one kind.

KIND_PERMISSIONS = {
    "members": ("members.add_member", MEMBERS_HEADER + "M-1,ana@example.com,,,,,,,\n"),
    "transactions": ("points.add_transaction", HEADER + "T-1,M-0001,purchase,10,2026-03-01,,,\n"),
}


@pytest.mark.parametrize("kind", KIND_PERMISSIONS)
def test_the_imports_link_of_an_import_leads_a_user_who_may_import_its_kind_to_their_list(
    client, staff_with, admin_user, alice, on_commit, kind
):
    # given a staff user who may only import this kind of file, and an import of the
    # other kind by someone else
    permission, data = KIND_PERMISSIONS[kind]
    other = "members" if kind == "transactions" else "transactions"
    ImportBatch.objects.create(kind=other, file_name="someone-elses.csv", uploaded_by=admin_user)
    staff_with(permission)
    on_commit(lambda: upload(client, data.encode(), kind=kind, name="mine.csv"))
    batch = ImportBatch.objects.get(kind=kind)

    # when they follow the "Imports" link at the top of their import's page
    page = client.get(reverse("admin:core_importbatch_change", args=[batch.pk]))
    link = re.search(r'<a href="([^"]+)">Imports</a>', page.content.decode()).group(1)
    listed = client.get(link)

    # then they see the imports of their kind, theirs among them, and no other kind's
    assert listed.status_code == 200
    shown = text(listed)
    assert "mine.csv" in shown and "someone-elses.csv" not in shown
    assert "Upload a file" in shown
    # and the CX Manager's menu leads there too
    assert f'href="{link}"' in client.get(reverse("admin:index")).content.decode()


def test_a_user_who_may_import_one_kind_cannot_open_another_kinds_import_from_the_list(
    client, staff_with, admin_user
):
    batch = ImportBatch.objects.create(
        kind=ImportBatch.Kind.TRANSACTIONS, file_name="day.csv", uploaded_by=admin_user
    )
    staff_with("members.add_member")

    listed = client.get(
        reverse("admin:core_importbatch_changelist"), {"kind__exact": "transactions"}
    )
    assert listed.status_code == 200 and "day.csv" not in text(listed)
    assert client.get(reverse("admin:core_importbatch_change", args=[batch.pk])).status_code == 403
    # its history is not theirs either: Django's "doesn't exist", back to the index
    history = client.get(reverse("admin:core_importbatch_history", args=[batch.pk]))
    assert (history.status_code, history.url) == (302, reverse("admin:index"))


def test_a_staff_user_who_may_import_nothing_still_cannot_list_imports(client, staff_with):
    staff_with("members.view_member")
    assert client.get(reverse("admin:core_importbatch_changelist")).status_code == 403


# 3. A thousands separator in an unquoted amount: one error naming the row's cells.


def more_cells(count, columns) -> str:
    return (
        f"{count} cells, the header has {columns} columns: is there a comma inside a value? "
        "Write amounts without a thousands separator (1000.00, not 1,000.00), and text "
        'with a comma in quotes ("Madrid, Centro")'
    )


def test_an_unquoted_thousands_separator_is_named_as_a_comma_inside_a_value(
    alice, tmp_path, capsys
):
    # given a file whose second row has 1,000.00 unquoted (one cell more than the header,
    # the last one empty, as the row's original_external_id is)
    data = (
        HEADER
        + "T-1,M-0001,purchase,12.00,2026-03-01,,,\n"
        + "T-2,M-0001,purchase,1,000.00,2026-03-02,,,\n"
    ).encode()
    before = ledger_state()

    # when it is imported
    status, out, err = command(tmp_path, capsys, data)

    # then that row gets one error, which says why, and nothing is written
    assert err == ["line 3, row: " + more_cells(9, 8)]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=1")
    assert ledger_state() == before


def test_a_split_return_whose_last_cell_spills_past_the_header_says_the_same(
    alice, tmp_path, capsys
):
    data = (
        HEADER
        + "T-1,M-0001,purchase,1200.00,2026-03-01,,,\n"
        + "R-1,M-0001,return,1,000.00,2026-03-02,,,T-1\n"
    ).encode()

    status, out, err = command(tmp_path, capsys, data)

    assert err == ["line 3, row: " + more_cells(9, 8)]
    assert not Transaction.objects.exists()


def test_a_split_amount_is_named_on_the_imports_page(login, client, alice, on_commit):
    login("Operations")
    data = (HEADER + "T-2,M-0001,purchase,1,000.00,2026-03-02,,,\n").encode()

    on_commit(lambda: upload(client, data))

    shown = batch_page(client, ImportBatch.objects.get())
    assert "1 row cannot be imported" in shown
    assert "2 row " + more_cells(9, 8) in shown
    assert "is not a date (2026-11-01)" not in shown  # no cell read in the wrong column


def test_rows_a_spreadsheet_ends_with_empty_cells_are_still_imported(alice, tmp_path, capsys):
    data = (
        HEADER
        + "T-1,M-0001,purchase,12.00,2026-03-01,,,,\n"
        + "T-2,M-0001,purchase,13.00,2026-03-02,,,,,\n"
    ).encode()

    status, out, err = command(tmp_path, capsys, data)

    assert (status, err, out[-1]) == (0, [], "new=2 skipped=0 errors=0")


@pytest.mark.parametrize("data", [b"", b"\n\n\n", b" , \r\n"])
def test_an_empty_file_is_named_empty_once_not_eight_missing_columns(tiers, tmp_path, capsys, data):
    status, out, err = command(tmp_path, capsys, data)

    assert err == [
        "line 1, file: the file is empty: its first line is the header "
        "external_id,member,kind,amount,occurred_at,channel,store,original_external_id"
    ]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=1")


def test_a_members_file_with_a_comma_in_a_name_says_the_same(tiers, tmp_path, capsys):
    # given "García, Jr." unquoted: every cell after it one column on, the last one
    # past the header empty
    data = (
        MEMBERS_HEADER + "M-1,ana@example.com,Ana,García, Jr.,,2019-03-01,1988-07-14,1250,\n"
    ).encode()

    status, out, err = command(tmp_path, capsys, data, name="import_members")

    assert err == ["line 2, row: " + more_cells(10, 9)]
    assert (status, out[-1]) == (1, "new=0 updated=0 skipped=0 errors=1")


# 4. A UTF-16 file: one error on line 1, not a NUL on every line.

UTF16 = {
    "little-endian, commas": ("utf-16-le", ",", b"\xff\xfe"),
    "big-endian, commas": ("utf-16-be", ",", b"\xfe\xff"),
    "Excel's Unicode Text (tabs)": ("utf-16-le", "\t", b"\xff\xfe"),
}
UTF16_REASON = (
    "line 1, file: the file is UTF-16 text, not UTF-8: save it as CSV UTF-8 "
    "(in Excel: CSV UTF-8 (Comma delimited))"
)


@pytest.mark.parametrize("encoding, separator, bom", UTF16.values(), ids=UTF16.keys())
def test_a_utf16_file_gets_one_error_on_line_1_saying_to_save_it_as_utf8(
    alice, tmp_path, capsys, encoding, separator, bom
):
    rows = HEADER + "T-1,M-0001,purchase,10.00,2026-03-01,,,\nT-2,M-0001,purchase,9,2026-03-02,,,\n"
    data = bom + rows.replace(",", separator).encode(encoding)

    status, out, err = command(tmp_path, capsys, data)

    assert err == [UTF16_REASON]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=1")
    assert not Transaction.objects.exists()


def test_a_utf16_file_uploaded_in_the_cx_manager_is_told_to_be_saved_as_utf8(
    login, client, alice, on_commit
):
    login("Operations")
    data = (HEADER + "T-1,M-0001,purchase,10.00,2026-03-01,,,\n").encode("utf-16")

    on_commit(lambda: upload(client, data))

    batch = ImportBatch.objects.get()
    shown = batch_page(client, batch)
    assert "The file cannot be imported" in shown
    assert "1 file the file is UTF-16 text, not UTF-8: save it as CSV UTF-8" in shown
    assert "NUL" not in shown
    assert batch.first_errors == [[1, "file", UTF16_REASON.removeprefix("line 1, file: ")]]


# 5. A transactions file re-sent after one of its members was erased.


def test_a_file_resent_after_a_member_was_erased_reports_their_rows_as_already_imported(
    alice, bob, admin_user, tmp_path, capsys
):
    # given a file imported once, then one of its members erased (right to be forgotten)
    data = (
        HEADER
        + "T-1,M-0001,purchase,100.00,2026-03-01,,,\n"
        + "T-2,M-0002,purchase,200.00,2026-03-01,pos,STORE-1,\n"
        + "T-3,M-0002,return,50.00,2026-03-02,,,T-2\n"
    ).encode()
    assert command(tmp_path, capsys, data)[1][-1] == "new=3 skipped=0 errors=0"
    erase_member(member=bob, by=admin_user)
    before = ledger_state()

    # when the same file is sent again
    status, out, err = command(tmp_path, capsys, data)

    # then every row is reported as already imported, and nothing changes
    assert (status, err, out[-1]) == (0, [], "new=0 skipped=3 errors=0")
    assert ledger_state() == before


def test_a_resent_row_of_an_erased_member_with_other_content_is_an_error(
    alice, bob, admin_user, tmp_path, capsys
):
    first = (HEADER + "T-2,M-0002,purchase,200.00,2026-03-01,,,\n").encode()
    command(tmp_path, capsys, first)
    erase_member(member=bob, by=admin_user)
    before = ledger_state()

    status, out, err = command(
        tmp_path,
        capsys,
        (
            HEADER
            + "T-2,M-0002,purchase,250.00,2026-03-01,,,\n"  # another amount
            + "T-4,M-0002,purchase,10.00,2026-03-05,,,\n"  # new: the code is no one's now
            + "T-5,M-0001,purchase,10.00,2026-03-05,,,\n"
        ).encode(),
    )

    assert err == [
        "line 2, external_id: T-2 was already imported with other content",
        "line 3, member: no member with customer code 'M-0002'",
    ]
    assert status == 1 and ledger_state() == before


def test_a_row_imported_for_an_erased_member_resent_for_a_live_member_is_an_error(
    alice, bob, admin_user, tmp_path, capsys
):
    command(tmp_path, capsys, (HEADER + "T-2,M-0002,purchase,200.00,2026-03-01,,,\n").encode())
    erase_member(member=bob, by=admin_user)

    status, out, err = command(
        tmp_path, capsys, (HEADER + "T-2,M-0001,purchase,200.00,2026-03-01,,,\n").encode()
    )

    assert err == ["line 2, external_id: T-2 was already imported with other content"]


def test_a_file_resent_after_an_erasure_is_shown_as_already_imported_in_the_cx_manager(
    login, client, alice, bob, admin_user, on_commit
):
    data = (
        HEADER
        + "T-1,M-0001,purchase,100.00,2026-03-01,,,\n"
        + "T-2,M-0002,purchase,200.00,2026-03-01,,,\n"
    ).encode()
    login("Operations")
    on_commit(lambda: upload(client, data, name="first.csv"))
    first = ImportBatch.objects.get()
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[first.pk])))
    erase_member(member=bob, by=admin_user)
    before = ledger_state()

    on_commit(lambda: upload(client, data, name="again.csv"))

    again = ImportBatch.objects.get(file_name="again.csv")
    assert (again.status, again.new, again.skipped) == (Status.CHECKED, 0, 2)
    assert "Already imported (skipped) 2" in batch_page(client, again)
    assert ledger_state() == before
