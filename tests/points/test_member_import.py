"""The members import: enrolments, contact details and opening balances, all or nothing."""

import io
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from core.models import ImportBatch
from members.models import Member, Notification, TierChange
from points.csv_rows import COLUMNS as TRANSACTION_COLUMNS
from points.member_rows import read_members
from points.models import OPENING_BALANCE, LedgerEntry
from points.resources import read_transactions
from points.services import import_members
from tests.conftest import at, postgres_only, run_together, summary
from tiers.services import grant_status

pytestmark = pytest.mark.django_db
HEADER = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime\n"
)


def run(text, *, dry_run=False, bom=False, header=HEADER, batch=None, on_chunk=None):
    data = (("\ufeff" if bom else "") + header + text).encode()
    rows, errors = read_members(io.BytesIO(data))
    return import_members(rows, errors=errors, dry_run=dry_run, batch=batch, on_chunk=on_chunk)


def state():
    """Everything an import may write."""
    return (
        list(
            Member.objects.order_by("pk").values_list(
                "external_id",
                "email",
                "first_name",
                "last_name",
                "phone",
                "joined_at",
                "birth_date",
                "points_balance",
                "lifetime_points",
                "qualified_tier__code",
                "effective_tier__code",
                "best_tier__code",
            )
        ),
        LedgerEntry.objects.count(),
        TierChange.objects.count(),
        Notification.objects.count(),
    )


def entries(code):
    return list(
        LedgerEntry.objects.filter(member__external_id=code)
        .order_by("pk")
        .values_list("kind", "points", "counts_toward_tier", "redeemable", "definition__handle")
    )


def test_a_new_code_enrols_a_member_in_the_entry_tier_with_its_details(tiers):
    report = run("M-1,ann@example.com,Ann,Lee,+34 600 000 000,2020-01-15,1990-05-01,,\n")
    assert (report.new, report.updated, report.skipped, report.errors) == (1, 0, 0, [])
    ann = Member.objects.get(external_id="M-1")
    assert (ann.email, ann.first_name, ann.last_name, ann.phone) == (
        "ann@example.com",
        "Ann",
        "Lee",
        "+34 600 000 000",
    )
    assert ann.joined_at == at("2020-01-15", 0)  # a date: midnight in the programme's zone
    assert ann.birth_date == date(1990, 5, 1)
    assert (ann.qualified_tier.code, ann.effective_tier.code, ann.best_tier.code) == ("bronze",) * 3
    assert list(ann.tier_changes.values_list("reason", "to_tier__code", "changed_at")) == [
        ("joined", "bronze", at("2020-01-15", 0))
    ]
    assert entries("M-1") == []


def test_only_the_code_and_email_are_required_and_joined_at_defaults_to_now(tiers):
    before = timezone.now()
    report = run("M-1,ann@example.com\n", header="external_id,email\n")
    assert (report.new, report.errors) == (1, [])
    ann = Member.objects.get(external_id="M-1")
    assert ann.joined_at >= before and ann.birth_date is None and ann.phone == ""


def test_opening_balances_place_the_member_in_its_tier_without_bonus_or_message(tiers):
    report = run("M-1,ann@example.com,Ann,,,2019-03-01,,500,3500\n")
    assert (report.new, report.points, report.lifetime, report.tier_changes) == (1, 500, 3500, 1)
    ann = Member.objects.get(external_id="M-1")
    figures = summary(ann)
    assert (figures["available"], figures["pending"], figures["lifetime"]) == (500, 0, 3500)
    assert figures["qualified_tier"].code == figures["effective_tier"].code == "gold"
    assert ann.best_tier.code == "gold"
    # Two entries of the Opening balance definition: points redeemable and not
    # tier-counting, lifetime tier-counting and not redeemable; no tier-up bonus.
    assert entries("M-1") == [
        ("bonus", 500, False, True, OPENING_BALANCE),
        ("bonus", 3500, True, False, OPENING_BALANCE),
    ]
    assert Notification.objects.count() == 0
    assert list(
        ann.tier_changes.order_by("pk").values_list("reason", "from_tier__code", "to_tier__code")
    ) == [("joined", None, "bronze"), ("opening_balance", "bronze", "gold")]
    call_command("check_ledger")


def test_a_later_purchase_pays_the_bonus_of_a_tier_above_the_opening_tier_only(tiers, buy):
    run("M-1,ann@example.com,,,,,,,3500\n")
    ann = Member.objects.get(external_id="M-1")
    buy(ann, "100", when=at("2026-03-02"))  # stays Gold: no bonus
    assert not LedgerEntry.objects.filter(
        member=ann, kind="bonus", definition__handle="tier-up-bonus"
    )
    buy(ann, "2300", when=at("2026-03-03"))  # 3,600 + 4,600 = 8,200: Platinum
    bonuses = LedgerEntry.objects.filter(member=ann, definition__handle="tier-up-bonus")
    assert list(bonuses.values_list("points", flat=True)) == [500]
    assert list(Notification.objects.values_list("kind", flat=True)) == ["tier_up"]


def test_the_same_file_twice_changes_nothing(tiers):
    text = (
        "M-1,ann@example.com,Ann,Lee,600,2020-01-01,1990-05-01,500,3500\n"
        "M-2,bob@example.com,Bob,,,,,,\n"
        "M-3,cy@example.com,,,,2021-06-01T10:30:00+02:00,,0,1200\n"
    )
    first = run(text)
    assert (first.new, first.errors) == (3, [])
    before = state()
    again = run(text)
    assert (again.new, again.updated, again.skipped, again.errors) == (0, 0, 3, [])
    assert state() == before


@pytest.mark.parametrize(
    "line, column, reason",
    [
        ("M-1,not-an-email,,,,,,,", "email", "valid email"),
        ("M-1,,,,,,,,", "email", "required"),
        (",ann@example.com,,,,,,,", "external_id", "required"),
        ("M-1,ann@example.com,,,,,,-5,", "opening_points", "negative"),
        ("M-1,ann@example.com,,,,,,,-1", "opening_lifetime", "negative"),
        ("M-1,ann@example.com,,,,,,1.5,", "opening_points", "not a whole number"),
        ("M-1,ann@example.com,,,,,,lots,", "opening_points", "not a whole number"),
        ("M-1,ann@example.com,,,,,,,2000000000", "opening_lifetime", "more than"),
        ("M-1,ann@example.com,,,,2020-13-01,,,", "joined_at", "is not a date (2026-11-01)"),
        ("M-1,ann@example.com,,,,9999-12-31T23:59:59-01:00,,,", "joined_at", "outside the"),
        ("M-1,ann@example.com,,,,0001-01-01T00:00:00+01:00,,,", "joined_at", "outside the"),
        ("M-1,ann@example.com,,,,9999-12-31,,,", "joined_at", "more than a day in the future"),
        ("M-1,ann@example.com,,,,2999-01-01T10:00:00+00:00,,,", "joined_at", "in the future"),
        ("M-1,ann@example.com,,,,,," + "9" * 5000 + ",", "opening_points", "5,000 digits"),
        ("M-1,ann@example.com,,,,,1990-02-30,,", "birth_date", "not a date"),
        ("M-1,ann@example.com,,,,,01/05/1990,,", "birth_date", "not a date"),
        ("M-1,ann@example.com,,,,,2999-01-01,,", "birth_date", "cannot be in the future"),
        ("M-1,ann@example.com,,,,,0001-01-01,,", "birth_date", "year typed wrong"),
        ("M-1,ann@example.com,,,,0001-01-01,,,", "joined_at", "year typed wrong"),
        # Year 1 at 00:10 UTC is year 0 in Madrid (-00:14:44 then): no day of the programme
        ("M-1,ann@example.com,,,,0001-01-01T00:10:00Z,,,", "joined_at", "outside the calendar"),
        ("M-1,ann@example.com," + "A" * 101 + ",,,,,,", "first_name", "at most 100"),
        ("M-1,ann@example.com,,,,,,,,extra", "row", "cells, the header has"),
    ],
)
def test_a_bad_email_or_a_negative_opening_balance_is_named_and_nothing_is_written(
    tiers, line, column, reason
):
    before = state()
    report = run("M-0,ok@example.com,,,,,,100,100\n" + line + "\n")
    assert [(e.line, e.column) for e in report.errors] == [(3, column)]
    assert reason in report.errors[0].reason
    assert (report.new, report.updated) == (0, 0)
    assert state() == before  # the good row on line 2 was not written either


def test_every_bad_row_is_listed(tiers):
    report = run(
        "M-1,bad,,,,,,,\n"
        "M-2,ok@example.com,,,,,,,\n"
        "M-3,ok@example.com,,,,,,-1,x\n"
        "M-2,again@example.com,,,,,,,\n"
    )
    assert [(e.line, e.column) for e in report.errors] == [
        (2, "email"),
        (4, "opening_lifetime"),
        (4, "opening_points"),
        (5, "external_id"),
    ]
    assert str(report.errors[-1]) == "line 5, external_id: duplicate of line 3"
    assert Member.objects.count() == 0


def test_a_row_repeating_the_code_of_a_bad_row_is_listed_in_the_same_run(tiers):
    report = run("M-1,bad,,,,,,,\nM-1,ok@example.com,,,,,,,\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "email"), (3, "external_id")]
    assert str(report.errors[-1]) == "line 3, external_id: duplicate of line 2"
    assert Member.objects.count() == 0


def test_a_known_code_updates_contact_details(make_member):
    ann = make_member("M-1", joined_at=at("2024-01-01"))
    report = run("M-1,ann.lee@example.com,Ann,,+34 611,2010-01-01,1990-05-01,,\n")
    assert (report.new, report.updated, report.skipped, report.errors) == (0, 1, 0, [])
    ann.refresh_from_db()
    assert (ann.email, ann.first_name, ann.phone, ann.birth_date) == (
        "ann.lee@example.com",
        "Ann",
        "+34 611",
        date(1990, 5, 1),
    )
    assert ann.joined_at == at("2024-01-01")  # kept: the joining date is history
    # An empty cell keeps what is stored.
    run("M-1,ann.lee@example.com,,Lee,,,,,\n")
    ann.refresh_from_db()
    assert (ann.first_name, ann.last_name, ann.phone) == ("Ann", "Lee", "+34 611")
    assert list(ann.tier_changes.values_list("reason", flat=True)) == ["joined"]


def test_a_known_member_gets_its_opening_balance_once_and_another_amount_is_an_error(
    make_member, buy
):
    ann = make_member("M-1")
    buy(ann, "500", when=at("2026-03-01"))  # 500 lifetime points, Bronze
    report = run("M-1,m-1@example.com,,,,,,200,2600\n")
    assert (report.updated, report.tier_changes, report.errors) == (1, 1, [])
    figures = summary(ann)
    assert (figures["available"], figures["lifetime"]) == (700, 3100)
    assert figures["qualified_tier"].code == "gold"
    assert not LedgerEntry.objects.filter(member=ann, definition__handle="tier-up-bonus")
    assert Notification.objects.count() == 0
    before = state()
    again = run("M-1,m-1@example.com,,,,,,200,2600\n")
    assert (again.updated, again.skipped, again.errors) == (0, 1, [])
    other = run("M-1,m-1@example.com,,,,,,300,2600\n")
    assert [str(e) for e in other.errors] == [
        "line 2, opening_points: M-1 already has an opening balance of 200, not 300: "
        "correct it with a manual adjustment"
    ]
    assert state() == before
    call_command("check_ledger")


def test_entries_name_the_batch_and_external_ids_made_of_the_code_and_progress_is_heard(
    tiers, staff
):
    batch = ImportBatch.objects.create(
        kind=ImportBatch.Kind.MEMBERS, file_name="members.csv", uploaded_by=staff
    )
    heard = []
    report = run(
        "M-1,ann@example.com,,,,,,10,20\nM-2,bob@example.com\n",
        batch=batch,
        on_chunk=lambda done, total: heard.append((done, total)),
    )
    assert (report.members, report.points, heard) == (2, 10, [(2, 2)])
    assert set(LedgerEntry.objects.values_list("batch", "external_id")) == {
        (batch.pk, "opening-points:M-1"),
        (batch.pk, "opening-lifetime:M-1"),
    }


def test_a_dry_run_writes_nothing_and_a_bom_is_accepted(tiers):
    report = run("M-1,ann@example.com,,,,,,10,20\n", dry_run=True, bom=True)
    assert (report.new, report.points, report.errors) == (1, 10, [])
    assert Member.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_check_ledger_passes_after_an_import(make_member, buy, capsys):
    buy(make_member("M-2"), "1200", when=at("2026-03-01"))
    lines = [f"N-{i},n{i}@example.com,,,,2020-01-01,,{i * 7},{i * 450}" for i in range(40)]
    report = run("M-2,m-2@example.com,,,,,,,9000\n" + "\n".join(lines) + "\n")
    assert (report.new, report.updated, report.errors) == (40, 1, [])
    call_command("check_ledger")
    assert "41 members checked, all equal the ledger" in capsys.readouterr().out
    tiers = dict(Member.objects.values_list("external_id", "qualified_tier__code"))
    assert (tiers["N-0"], tiers["N-3"], tiers["N-7"], tiers["N-39"], tiers["M-2"]) == (
        "bronze",
        "silver",
        "gold",
        "platinum",
        "platinum",
    )


def test_the_command_prints_every_bad_row_and_ends_with_the_counts(tiers, tmp_path, capsys):
    path = tmp_path / "members.csv"
    path.write_text(HEADER + "M-1,bad,,,,,,,\nM-2,ok@example.com,,,,,,,-3\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("import_members", str(path))
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "line 2, email: Enter a valid email address",
        "line 3, opening_lifetime: -3 is negative: an opening balance is 0 or more",
    ]
    assert captured.out.strip().splitlines()[-1] == "new=0 updated=0 skipped=0 errors=2"
    path.write_text(HEADER + "M-1,ok@example.com,,,,,,5,1000\n")
    call_command("import_members", str(path), "--dry-run")
    assert Member.objects.count() == 0
    call_command("import_members", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 updated=0 skipped=0 errors=0"
    call_command("import_members", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 updated=0 skipped=1 errors=0"


def test_enroll_member_checks_a_birth_date_as_the_import_does(tiers):
    from django.core.exceptions import ValidationError

    from members.services import enroll_member

    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(ValidationError, match="cannot be in the future"):
        enroll_member(external_id="M-1", email="a@example.com", birth_date=tomorrow)


def test_a_members_file_goes_through_the_cx_manager_upload(
    tiers, admin_client, media, django_capture_on_commit_callbacks
):
    text = HEADER + "M-1,ann@example.com,Ann,,,,,500,3500\n"
    upload = SimpleUploadedFile("members.csv", text.encode(), "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:core_importbatch_upload"), {"kind": "members", "file": upload}
        )
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.new, batch.members, batch.points) == ("checked", 1, 1, 500)
    assert not Member.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "done"
    assert summary(Member.objects.get(external_id="M-1"))["qualified_tier"].code == "gold"
    assert set(LedgerEntry.objects.values_list("batch", flat=True)) == {batch.pk}


@pytest.mark.parametrize(
    "data, reason",
    [
        ("external_id,email,prénom\nM-1,a@example.com,Ann\n".encode("latin-1"), "byte 0xE9"),
        ((HEADER + "M-1,a@example.com,Ána,,,,,,\n").encode("utf-16"), "the file is UTF-16 text"),
        (b"external_id,email,no\x00te\nM-1,a@example.com,x\n", "a NUL character"),
    ],
    ids=["latin1", "utf16", "nul"],
)
def test_a_header_that_is_not_utf8_text_is_listed_as_a_bad_line_in_the_cx_manager(
    tiers, admin_client, settings, tmp_path, django_capture_on_commit_callbacks, data, reason
):
    settings.MEDIA_ROOT = tmp_path / "media"
    upload = SimpleUploadedFile("members.csv", data, "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:core_importbatch_upload"), {"kind": "members", "file": upload}
        )
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.INVALID, batch.failure
    assert batch.first_errors[0][0] == 1 and reason in batch.first_errors[0][2]
    errors = admin_client.get(reverse("admin:core_importbatch_errors", args=[batch.pk]))
    assert errors.status_code == 200
    assert not Member.objects.exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_imports_of_the_same_new_codes_at_once_enrol_them_once(tiers):
    text = "M-1,ann@example.com,,,,,,100,1500\nM-2,bob@example.com,,,,,,,\n"
    reports = run_together(2, lambda i: run(text))
    assert sorted((r.new, r.skipped, len(r.errors)) for r in reports) == [(0, 2, 0), (2, 0, 0)]
    assert Member.objects.count() == 2
    assert LedgerEntry.objects.count() == 2
    call_command("check_ledger")


def test_G5_an_opening_balance_never_takes_a_member_below_a_running_status_match(
    make_member, tiers, staff
):
    # given: Bronze by points, Gold by a status match
    ann = make_member("M-1")
    grant_status(
        member=ann,
        tier=tiers["gold"],
        until=timezone.localdate() + timedelta(days=90),
        reason="Competitor",
        by=staff,
    )
    # when: the import brings 1,500 lifetime points (Silver)
    report = run("M-1,m-1@example.com,,,,,,,1500\n")
    # then: Silver by points, still Gold by the match
    assert (report.updated, report.errors) == (1, [])
    figures = summary(ann)
    assert (figures["qualified_tier"].code, figures["effective_tier"].code) == ("silver", "gold")
    call_command("check_ledger")


# "An empty cell changes nothing" for a known code, the e-mail's included: a file can
# bring a phone alone. A new code must still have an e-mail (it enrols a member).


def test_an_empty_cell_changes_nothing_an_empty_email_of_a_known_member_keeps_it(
    make_member, tmp_path, capsys
):
    ann = make_member("M-00120")
    path = tmp_path / "members.csv"
    path.write_text(HEADER + "M-00120,,,,+34600000120,,,,\n")
    call_command("import_members", str(path), "--dry-run")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 updated=1 skipped=0 errors=0"
    ann.refresh_from_db()
    assert ann.phone == ""
    call_command("import_members", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 updated=1 skipped=0 errors=0"
    ann.refresh_from_db()
    assert (ann.email, ann.phone) == ("m-00120@example.com", "+34600000120")
    # Again, or with every cell empty: nothing changes, the row is skipped.
    path.write_text(HEADER + "M-00120,,,,+34600000120,,,,\n")
    call_command("import_members", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 updated=0 skipped=1 errors=0"
    path.write_text(HEADER + "M-00120,,,,,,,,\n")
    call_command("import_members", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 updated=0 skipped=1 errors=0"
    ann.refresh_from_db()
    assert (ann.email, ann.phone) == ("m-00120@example.com", "+34600000120")


def test_an_empty_cell_changes_nothing_but_a_new_code_still_needs_an_email(
    make_member, tmp_path, capsys
):
    make_member("M-00120")
    path = tmp_path / "members.csv"
    path.write_text(HEADER + "M-00120,,,,+34600000120,,,,\nM-00121,,,,+34600000121,,,,\n")
    with pytest.raises(SystemExit):
        call_command("import_members", str(path))
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["line 3, email: required"]
    assert captured.out.strip().splitlines()[-1] == "new=0 updated=0 skipped=0 errors=1"
    assert Member.objects.get(external_id="M-00120").phone == ""  # all or nothing
    assert not Member.objects.filter(external_id="M-00121").exists()


def test_an_empty_cell_changes_nothing_through_the_cx_manager_upload(
    make_member, admin_client, media, django_capture_on_commit_callbacks
):
    make_member("M-00120")
    make_member("M-00122")
    text = HEADER + "M-00120,,,,+34600000120,,,,\nM-00122,,,,,,,,\n"
    upload = SimpleUploadedFile("members.csv", text.encode(), "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:core_importbatch_upload"), {"kind": "members", "file": upload}
        )
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.first_errors) == ("checked", [])
    assert (batch.new, batch.updated, batch.skipped) == (0, 1, 1)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "done"
    ann = Member.objects.get(external_id="M-00120")
    assert (ann.email, ann.phone) == ("m-00120@example.com", "+34600000120")


@pytest.mark.parametrize(
    "moment, why",
    [
        ("2026-03-29T02:30", "does not exist in Europe/Madrid (the clocks went forward"),
        ("2026-10-25T02:30", "happened twice in Europe/Madrid (the clocks went back"),
    ],
)
def test_a_joining_time_the_clock_change_skips_or_repeats_asks_for_its_offset(
    tiers, tmp_path, capsys, moment, why
):
    path = tmp_path / "members.csv"
    path.write_text(HEADER + f"M-1,ann@example.com,,,,{moment},,,\n")
    with pytest.raises(SystemExit):
        call_command("import_members", str(path))
    [error] = capsys.readouterr().err.splitlines()
    offsets = "+01:00 or +02:00" if "forward" in why else "+02:00 or +01:00"
    assert error == (
        f"line 2, joined_at: {moment!r} {why} that night): give it with its offset ({offsets})"
    )
    # The same words as the transactions import's.
    purchase = f"{','.join(TRANSACTION_COLUMNS)}\nT-1,M-1,purchase,10,{moment},,,\n"
    rows, errors = read_transactions(io.BytesIO(purchase.encode()))
    list(rows)
    assert [e.reason for e in errors] == [error.removeprefix("line 2, joined_at: ")]
    assert not Member.objects.exists()


# A programme migrating in: the last purchase there (an optional column)

WITH_LAST_PURCHASE = HEADER.replace("opening_lifetime\n", "opening_lifetime,last_purchase_at\n")


def test_D2_a_member_migrating_in_degrades_from_the_last_purchase_the_file_gives(
    tiers, degradation
):
    """Found by an audit: a Gold member migrating in who joined in 2019 dropped a tier at
    the first night's run, with a "We miss you", since the file could not say she had
    bought last week; one who last bought 100 days ago drops, as D2 says."""
    # given: two Gold members migrating in, one who bought a week ago, one 100 days ago
    now = timezone.now()
    recent, old = (f"{(now - timedelta(days=d)).date()}" for d in (7, 100))
    report = run(
        f"MIG-1,ana@example.com,Ana,,,2019-03-01,,1250,4200,{recent}\n"
        f"MIG-2,bea@example.com,Bea,,,2019-03-01,,1250,4200,{old}\n",
        header=WITH_LAST_PURCHASE,
    )
    assert (report.new, report.errors) == (2, [])

    # when the nightly degradation runs
    from tiers.services import degrade_inactive_members

    degrade_inactive_members(now=now)

    # then only the one without a purchase for 90 days drops
    tiers_now = dict(Member.objects.values_list("external_id", "effective_tier__code"))
    assert tiers_now == {"MIG-1": "gold", "MIG-2": "silver"}
    assert Member.objects.get(external_id="MIG-1").last_purchase_at == at(recent, 0)


@pytest.mark.parametrize(
    "cell, message",
    [
        (
            "2018-01-01",
            "last_purchase_at: is before joined_at: a member buys once they have joined",
        ),
        ("01/03/2019", "last_purchase_at: '01/03/2019' is not a date (2026-11-01)"),
        ("9999-12-31", "last_purchase_at: 9999-12-31 is more than a day in the future"),
    ],
)
def test_a_last_purchase_a_file_cannot_use_is_named_and_nothing_is_written(tiers, cell, message):
    before = state()

    report = run(f"MIG-1,ana@example.com,Ana,,,2019-03-01,,,,{cell}\n", header=WITH_LAST_PURCHASE)

    assert any(message in str(error) for error in report.errors), report.errors
    assert state() == before


def test_a_new_member_s_last_purchase_needs_the_day_they_joined(tiers):
    """Without joined_at a new member joins at the import, after a last purchase in the
    past (found by an audit)."""
    before = state()

    report = run("MIG-1,ana@example.com,Ana,,,,,,,2026-01-10\n", header=WITH_LAST_PURCHASE)

    assert [str(error) for error in report.errors] == [
        "line 2, joined_at: required with last_purchase_at (else it is now)"
    ]
    assert state() == before


def test_a_known_member_keeps_its_own_last_purchase(tiers, make_member, buy):
    ana = make_member("M-1")
    buy(ana, "10.00", at("2026-03-02"))

    run("M-1,,,,,,,,,2020-01-01\n", header=WITH_LAST_PURCHASE)

    ana.refresh_from_db()
    assert ana.last_purchase_at == at("2026-03-02")


def test_a_file_does_not_enrol_again_a_customer_erased_at_their_request(tiers, make_member, staff):
    """Found by an audit: the brand's old file imported again after an erasure enrolled
    the customer anew, with the personal data they asked to be forgotten and a second
    welcome."""
    # given: M-12 erased at her request
    from members.services import enroll_member, erase_member

    erase_member(member=make_member("M-12"), by=staff)
    before = state()

    # when: a file names M-12 again
    report = run("M-12,paula@example.com,Paula,Erased,,2020-01-01,,,\n")

    # then: refused, saying why; nothing written
    assert [str(error) for error in report.errors] == [
        "line 2, external_id: M-12 was a customer erased at their request: a file does not "
        "enrol them again (an agent enrols them by hand if they ask to join)"
    ]
    assert state() == before
    # and the customer who asks to join again is enrolled by hand (or by a till)
    assert enroll_member(external_id="M-12", email="paula@example.com").pk
