"""A members file as a whole, all or nothing: imported twice, as a dry run, as a
batch, by the command, through the CX Manager's upload, twice at once."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from core.models import ImportBatch
from members.models import Member
from points.models import LedgerEntry
from tests.conftest import postgres_only, run_together, summary
from tests.points.member_files import HEADER, run, state

pytestmark = pytest.mark.django_db


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


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_new_code_a_till_enrols_while_the_file_is_imported_is_updated_not_a_failure(
    tiers, staff, monkeypatch, settings, tmp_path
):
    """Found by a review: the import stopped on the database's own words ("duplicate key
    value violates unique constraint") and wrote nothing."""
    import threading

    from django.db import connections

    from members.services import enroll_member
    from points.services import batches, member_bulk

    settings.IMPORTS_ROOT = tmp_path
    read, enrolled = member_bulk.chunks, []

    def chunks(size):  # between the import reading its rows and writing them
        for chunk in read(size):
            if not enrolled:
                till = threading.Thread(
                    target=lambda: (
                        enrolled.append(enroll_member(external_id="M-2", email="bob@shop.com")),
                        connections.close_all(),
                    )
                )
                till.start(), till.join()
            yield chunk

    monkeypatch.setattr(member_bulk, "chunks", chunks)
    text = HEADER + "M-1,ann@example.com,,,,,,100,1500\nM-2,bob@example.com,Bob,,,,,,\n"

    report = batches.import_now(
        kind=ImportBatch.Kind.MEMBERS, data=text.encode(), file_name="m.csv", by=staff
    )

    assert (report.new, report.updated, report.errors) == (1, 1, [])
    assert Member.objects.get(external_id="M-2").first_name == "Bob"
    assert ImportBatch.objects.get().status == ImportBatch.Status.DONE
    call_command("check_ledger")
