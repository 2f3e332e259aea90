"""Imports as staff meet them (an audit's third round): points written with an unquoted
thousands separator in a grants file, a UTF-16 file saved without its byte order mark,
and the last line of the import commands counting rows with errors, as the list of
imports does, not messages."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import load_command_class

from core.models import ImportBatch
from members.models import Member
from points.models import LedgerEntry
from tests.conftest import ledger_state
from tests.points.test_import_defects_2 import (
    HEADER,
    MEMBERS_HEADER,
    UTF16_REASON,
    batch_page,
    command,
    upload,
)

pytestmark = pytest.mark.django_db

GRANTS_HEADER = "external_id,member,points,reason,definition\n"
Status = ImportBatch.Status


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    return user


def grants(tmp_path, capsys, data: bytes):
    return command(tmp_path, capsys, data, "import_grants", ("--by", "marketer"))


def split(points: str, group: str, number: str) -> str:
    return (
        f"{points}, then {group} in the next cell: is there a comma inside the number "
        f"({number})? Write {number.replace(',', '')}"
    )


# 1. Points written 1,000 unquoted in a grants file: an error, not 1 point.

SPLIT_POINTS = {
    "the definition left out: the reason read as a definition": (
        GRANTS_HEADER,
        "G-2,M-0001,-2,500,Points given twice\n",
        split("-2", "500", "-2,500"),
    ),
    "a million": (GRANTS_HEADER, "G-2,M-0001,1,000,000\n", split("1", "000", "1,000,000")),
    "the row ends with the empty definition: a cell more than the header": (
        GRANTS_HEADER,
        "G-2,M-0001,1,000,Apology for the delay,\n",
        split("1", "000", "1,000"),
    ),
    "a definition: a cell more than the header, not empty": (
        GRANTS_HEADER,
        "G-2,M-0001,1,000,Apology for the delay,manual-adjustment\n",
        split("1", "000", "1,000"),
    ),
}


@pytest.mark.parametrize("header, row, error", SPLIT_POINTS.values(), ids=SPLIT_POINTS.keys())
def test_points_with_an_unquoted_thousands_separator_are_an_error_naming_the_comma(
    alice, marketer, tmp_path, capsys, header, row, error
):
    # given a grants file whose second row gives 1,000 points (or -2,500), unquoted
    data = (header + "G-1,M-0001,250,Damaged parcel\n" + row).encode()

    # when it is imported
    status, out, err = grants(tmp_path, capsys, data)

    # then that row is refused, saying why, and nothing is granted
    assert err == ["line 3, points: " + error]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=1")
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    "header",
    ["external_id,member,points,reason,definiton", "external_id,member,points,reason,note"],
)
def test_a_column_the_file_does_not_have_is_refused_by_name(
    alice, marketer, tmp_path, capsys, header
):
    # given a grants file whose optional definition column is misspelt (or a column of
    # notes): its cells would be left out unseen, and every row a manual adjustment
    data = f"{header}\nG-1,M-0001,5,Typo test,goodwill-tier-points\n".encode()

    # when it is imported
    status, out, err = grants(tmp_path, capsys, data)

    # then the header is refused, naming the column and the file's columns
    unknown = header.rsplit(",", 1)[1]
    assert err == [
        f"line 1, {unknown}: unknown column: the columns are "
        "external_id, member, points, reason, definition"
    ]
    assert status == 1
    assert not LedgerEntry.objects.exists()


def test_a_row_repeating_the_id_of_a_split_row_is_named_in_the_same_run(
    alice, marketer, tmp_path, capsys
):
    # given a split row, and a row below with its id
    data = (GRANTS_HEADER + "G-1,M-0001,1,000,Apology\nG-1,M-0001,5,Apology,\n").encode()

    # when it is imported
    status, out, err = grants(tmp_path, capsys, data)

    # then both are named at once: one correction of the file is enough
    assert err == [
        "line 2, points: " + split("1", "000", "1,000"),
        "line 3, external_id: duplicate of line 2",
    ]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=2")


def test_points_of_up_to_three_digits_before_a_reason_in_words_are_granted(
    alice, marketer, tmp_path, capsys
):
    # given rows whose reasons hold numbers among words, and points of four digits
    # before a reason of three digits (no thousands separator makes 1000,250)
    data = (
        GRANTS_HEADER
        + "G-1,M-0001,250,500 points promised in March,\n"
        + "G-2,M-0001,5,Ticket 123,\n"
        + "G-3,M-0001,1000,250,\n"
    ).encode()

    # when it is imported
    status, out, err = grants(tmp_path, capsys, data)

    # then all three are granted
    assert (status, err, out[-1]) == (0, [], "new=3 skipped=0 errors=0")
    assert sorted(LedgerEntry.objects.values_list("points", flat=True)) == [5, 250, 1000]


def test_a_split_number_of_points_is_named_on_the_imports_page(login, client, alice, on_commit):
    # given a marketer's grants file with 1,000 unquoted
    login("Marketer")
    data = (GRANTS_HEADER + "G-1,M-0001,1,000,Spring apology\n").encode()

    # when it is uploaded and checked
    on_commit(lambda: upload(client, data, kind="grants"))

    # then its page names the row, the column and the comma
    shown = batch_page(client, ImportBatch.objects.get())
    assert "1 row cannot be imported" in shown
    assert "2 points " + split("1", "000", "1,000") in shown
    assert "no definition" not in shown


# 2. A UTF-16 file without a byte order mark: the same one error as with one.

UTF16_FILES = {
    "transactions": (HEADER + "T-1,M-0001,purchase,10.00,2026-03-01,,,\n", "Operations"),
    "grants": (GRANTS_HEADER + "G-1,M-0001,5,Goodwill,\n", "Marketer"),
    "members": (MEMBERS_HEADER + "M-1,ana@example.com,Ana,García,,,,,\n", None),
}
WITHOUT_BOM = {"little-endian": "utf-16-le", "big-endian": "utf-16-be"}
COMMANDS = {
    "transactions": ("import_transactions", (), "new=0 skipped=0 errors=1"),
    "grants": ("import_grants", ("--by", "marketer"), "new=0 skipped=0 errors=1"),
    "members": ("import_members", (), "new=0 updated=0 skipped=0 errors=1"),
}


@pytest.mark.parametrize("encoding", WITHOUT_BOM.values(), ids=WITHOUT_BOM.keys())
@pytest.mark.parametrize("kind", UTF16_FILES)
def test_a_utf16_file_without_a_bom_gets_one_error_on_line_1_from_the_command(
    alice, marketer, tmp_path, capsys, kind, encoding
):
    # given a file saved as UTF-16 by a tool that writes no byte order mark
    data = UTF16_FILES[kind][0].encode(encoding)
    name, options, last_line = COMMANDS[kind]
    before = ledger_state()

    # when it is imported
    status, out, err = command(tmp_path, capsys, data, name, options)

    # then one error on line 1 says to save it as CSV UTF-8, not a NUL on every line
    assert err == [UTF16_REASON]
    assert (status, out[-1]) == (1, last_line)
    assert ledger_state() == before and Member.objects.count() == 1  # alice alone


@pytest.mark.parametrize("encoding", WITHOUT_BOM.values(), ids=WITHOUT_BOM.keys())
@pytest.mark.parametrize("kind", UTF16_FILES)
def test_a_utf16_file_without_a_bom_uploaded_in_the_cx_manager_is_told_to_be_saved_as_utf8(
    admin_client, alice, on_commit, kind, encoding
):
    # given a superuser, who may upload every kind of file
    data = UTF16_FILES[kind][0].encode(encoding)

    # when the file is uploaded and checked
    on_commit(lambda: upload(admin_client, data, kind=kind))

    # then its page says the file cannot be imported, and why, in one line
    batch = ImportBatch.objects.get()
    shown = batch_page(admin_client, batch)
    assert batch.status == Status.INVALID
    assert "The file cannot be imported" in shown
    assert "1 file the file is UTF-16 text, not UTF-8: save it as CSV UTF-8" in shown
    assert "NUL" not in shown
    assert batch.first_errors == [[1, "file", UTF16_REASON.removeprefix("line 1, file: ")]]


# 3. errors=N on the commands' last line counts rows with errors, as the Imports list.


def test_the_transactions_command_counts_a_row_with_two_wrong_cells_once(alice, tmp_path, capsys):
    # given a file whose line 2 has two wrong cells and line 3 one
    data = (
        HEADER
        + "T-1,M-0001,refund,-5,2026-03-01,,,\n"
        + "T-2,M-0404,purchase,10.00,2026-03-01,,,\n"
    ).encode()

    # when it is imported
    status, out, err = command(tmp_path, capsys, data)

    # then every message is listed, and the last line counts two rows
    assert err == [
        "line 2, amount: The amount must be positive, not -5",
        "line 2, kind: unknown kind 'refund': purchase or return",
        "line 3, member: no member with customer code 'M-0404'",
    ]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=2")


def test_the_grants_command_counts_a_row_with_two_wrong_cells_once(
    alice, marketer, tmp_path, capsys
):
    data = (GRANTS_HEADER + "G-1,M-0001,1.5,,\n").encode()

    status, out, err = grants(tmp_path, capsys, data)

    assert err == [
        "line 2, points: '1.5' is not a whole number of points",
        "line 2, reason: Say why the points are adjusted",
    ]
    assert (status, out[-1]) == (1, "new=0 skipped=0 errors=1")


def test_the_members_command_counts_a_row_with_two_wrong_cells_once(tiers, tmp_path, capsys):
    data = (MEMBERS_HEADER + "M-1,ok@example.com,,,,,,-1,x\n").encode()

    status, out, err = command(tmp_path, capsys, data, "import_members")

    assert len(err) == 2 and all(line.startswith("line 2, opening_") for line in err)
    assert (status, out[-1]) == (1, "new=0 updated=0 skipped=0 errors=1")


@pytest.mark.parametrize("name", ["import_transactions", "import_grants", "import_members"])
def test_each_commands_help_says_errors_counts_rows(name):
    help_text = load_command_class("points", name).create_parser("manage.py", name).format_help()

    assert "errors=N counts rows with errors, not messages" in " ".join(help_text.split())
