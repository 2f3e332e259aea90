"""The members import for known codes: contact details updated, and an empty cell
changes nothing (a new code still needs an e-mail)."""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from core.models import ImportBatch
from members.models import Member
from tests.conftest import at
from tests.points.member_files import HEADER, run

pytestmark = pytest.mark.django_db


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
