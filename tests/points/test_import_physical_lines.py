"""Every bad row of a transactions file is named with its physical line, whatever is
in it, through both doors (manage.py import_transactions and the admin's import
page); the command always ends with the counts."""

import pytest
from django.core.management import call_command

from points.models import Transaction
from tests.points.transaction_files import HEADER, state, upload_bytes

pytestmark = pytest.mark.django_db


def test_the_command_prints_every_bad_row_and_the_counts(alice, tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0404,purchase,1,x,,,\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("import_transactions", str(path))
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert (
        "line 3, occurred_at: 'x' is not a date (2026-11-01) or a time (2026-11-01T10:00:00+01:00)"
    ) in captured.err
    assert captured.out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"
    path.write_text(HEADER + "T-1,M-0001,purchase,10,2026-03-01,,,\n")
    call_command("import_transactions", str(path), "--dry-run")
    call_command("import_transactions", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 skipped=0 errors=0"
    assert Transaction.objects.count() == 1


@pytest.fixture
def importer(client, django_user_model):
    """An operator who may import transactions (points.add_transaction), not a superuser."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("operator", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_transaction", "add_transaction"])
    )
    client.force_login(user)
    assert django_user_model.objects.get(pk=user.pk).has_perm("points.add_transaction")
    return client


@pytest.fixture(params=["command", "admin"])
def door(request, tmp_path, capsys):
    """Sends a file's bytes through `manage.py import_transactions` or the admin's import
    page; returns what the operator reads (the command's output, the page's text)."""
    import html

    if request.param == "command":

        def send(data: bytes) -> str:
            path = tmp_path / "t.csv"
            path.write_bytes(data)
            try:
                call_command("import_transactions", str(path))
            except SystemExit as exit_:
                assert exit_.code == 1
            captured = capsys.readouterr()
            return captured.err + captured.out

        return send
    client = request.getfixturevalue("importer")

    def send(data: bytes) -> str:
        page = upload_bytes(client, data)
        assert page.status_code == 200
        return html.unescape(page.content.decode())

    return send


def lines(*rows) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


GOOD = "T-{n},M-0001,purchase,10,2026-03-01,,,"
REFUND = "T-9,M-0001,refund,10,2026-03-01,,,"  # a plain bad row, after the odd one

ODD_ROWS = {
    "a cell over 128 KB": (
        "T-3,M-0001,purchase,10,2026-03-01,,STORE-" + "x" * 200_000 + ",",
        "line 3, row: a cell longer than 131,072 characters",
    ),
    "a NUL byte": (
        "T-3,M-0001,purchase,10,2026-03-01,,ST\x00RE,",
        "line 3, store: a NUL character",
    ),
    "year 1 with an offset": (
        "T-3,M-0001,purchase,10,0001-01-01T00:00:00+01:00,,,",
        "line 3, occurred_at: 0001-01-01T00:00:00+01:00 is before the programme began",
    ),
    "year 9999 with an offset": (
        "T-3,M-0001,purchase,10,9999-12-31T23:00:00-05:00,,,",
        "line 3, occurred_at: 9999-12-31T23:00:00-05:00 is more than a day in the future",
    ),
    "cells beyond the header": (
        "T-3,M-0001,purchase,10,2026-03-01,,,,EXTRA",
        "line 3, row: 9 cells, the header has 8 columns",
    ),
}


@pytest.mark.parametrize("row, message", ODD_ROWS.values(), ids=ODD_ROWS.keys())
def test_every_bad_row_is_named_with_its_line_whatever_is_in_it(alice, door, row, message):
    # given a file whose third line crashed the import, between good rows, and a plain
    # bad row after it
    before = state()

    # when
    shown = door(lines(GOOD.format(n=2), row, GOOD.format(n=4), REFUND))

    # then both bad rows are named, with their lines, and nothing is written
    assert message in shown
    assert "line 5, kind: unknown kind 'refund'" in shown
    assert state() == before


def test_an_unclosed_quote_is_named_at_the_line_it_opens(alice, door):
    data = lines(GOOD.format(n=2), REFUND, 'T-4,M-0001,purchase,10,2026-03-01,,"S' + "x" * 200_000)
    shown = door(data)
    assert "line 3, kind: unknown kind 'refund'" in shown
    assert "line 4, row: a cell longer than 131,072 characters (is a quote left open?)" in shown


def test_the_command_always_ends_with_the_counts(alice, tmp_path, capsys):
    for row, _ in ODD_ROWS.values():
        path = tmp_path / "t.csv"
        path.write_bytes(lines(GOOD.format(n=2), row))
        with pytest.raises(SystemExit):
            call_command("import_transactions", str(path))
        assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"
    assert not Transaction.objects.exists()


def test_the_command_ends_with_the_counts_even_when_the_import_itself_fails(
    alice, tmp_path, capsys, monkeypatch
):
    # given an import that fails on its own, not on a row (the database gone)
    def gone(*args, **kwargs):
        raise ConnectionError("the database went away")

    monkeypatch.setattr("points.management.commands.import_transactions.import_transactions", gone)
    path = tmp_path / "t.csv"
    path.write_bytes(lines(GOOD.format(n=2)))

    # when / then: the traceback follows the last line, which is still the counts
    with pytest.raises(ConnectionError):
        call_command("import_transactions", str(path))
    captured = capsys.readouterr()
    assert "nothing was written" in captured.err
    assert captured.out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"


PHYSICAL_LINES = {
    "blank lines": (
        HEADER + "\n" + GOOD.format(n=3) + "\n\n" + REFUND + "\n",
        "line 5, kind: unknown kind 'refund'",
    ),
    "blank lines, CRLF": (
        (HEADER + "\n" + GOOD.format(n=3) + "\n\n" + REFUND + "\n").replace("\n", "\r\n"),
        "line 5, kind: unknown kind 'refund'",
    ),
    "a quoted cell over two lines": (
        HEADER + 'T-2,M-0001,purchase,10,2026-03-01,,"STORE\n12",\n' + REFUND + "\n",
        "line 4, kind: unknown kind 'refund'",
    ),
    "a bad row over two lines, by its first": (
        HEADER + GOOD.format(n=2) + '\nT-9,M-0001,refund,10,2026-03-01,,"STORE\n12",\n',
        "line 3, kind: unknown kind 'refund'",
    ),
}


@pytest.mark.parametrize("text, message", PHYSICAL_LINES.values(), ids=PHYSICAL_LINES.keys())
def test_line_numbers_are_the_files_physical_lines(alice, door, text, message):
    assert message in door(text.encode())


def test_a_byte_that_is_not_utf8_is_named_at_its_physical_line(alice, door):
    # given 3,000 good rows (lines 2 to 3001), a Latin-1 "É" on line 3002 and a bad row
    data = lines(*(GOOD.format(n=n) for n in range(2, 3002)))
    data += b"T-3002,M-0001,purchase,10,2026-03-01,,CAF\xc9,\n" + REFUND.encode() + b"\n"
    before = state()

    shown = door(data)

    assert "line 3002, store: not UTF-8 text (byte 0xC9): save the file as UTF-8" in shown
    assert "line 3003, kind: unknown kind 'refund'" in shown
    assert state() == before


def test_a_row_of_empty_cells_or_spaces_is_a_blank_line(alice, door):
    """Found by an audit: a spreadsheet's cleared row (",,,,,,,"), a line of spaces or a
    tab failed the whole file, five "required" errors each."""
    before = state()
    data = lines(GOOD.format(n=2), ",,,,,,,", "   ", "\t", " , ,,,,,,", REFUND)

    shown = door(data)

    assert "line 7, kind: unknown kind 'refund'" in shown  # lines still counted
    assert not any(f"line {n}," in shown for n in (3, 4, 5, 6)), shown
    assert state() == before
    # and without the bad row the file is good
    again = door(lines(GOOD.format(n=2), ",,,,,,,", "   ", GOOD.format(n=5)))
    assert "cannot be imported" not in again and "line 3," not in again, again


def test_a_members_file_and_a_grants_file_skip_rows_of_empty_cells(
    alice, admin_user, tmp_path, capsys
):
    members = "external_id,email,first_name,last_name,phone,joined_at,birth_date"
    members += ",opening_points,opening_lifetime\nM-NEW-1,new@example.com,,,,,,,\n,,,,,,,,\n"
    (tmp_path / "m.csv").write_text(members)
    call_command("import_members", str(tmp_path / "m.csv"), "--dry-run")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 updated=0 skipped=0 errors=0"

    grants = "external_id,member,points,reason,definition\nG-1,M-0001,5,Thanks,\n,,,,\n"
    (tmp_path / "g.csv").write_text(grants)
    call_command("import_grants", str(tmp_path / "g.csv"), "--by", "admin", "--dry-run")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 skipped=0 errors=0"


def test_a_file_of_a_header_alone_counts_no_bad_row(alice, door):
    """Found by an audit: "Nothing was imported: 1 row cannot be imported"."""
    shown = door(lines())
    assert "line 2, file: the file has no rows below its header" in shown
    assert "row cannot be imported" not in shown and "because of its header" not in shown
