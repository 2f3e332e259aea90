"""Imports from the CX Manager: upload, background check, errors or summary, confirm,
background import; the batch on every row it wrote; a step that stops is failed with
its reason and can be run again."""

import csv
import html
import io
import os
import re
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core import progress
from core.models import ImportBatch
from points.models import LedgerEntry, Transaction
from points.services import batches
from tests.conftest import ledger_state, summary

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
GOOD = HEADER + (
    "T-1,M-0001,purchase,120.50,2026-03-01T10:00:00+01:00,pos,S-1,\n"
    "T-2,M-0001,return,20.00,2026-03-03,ecommerce,,T-1\n"
    "T-3,M-0002,purchase,45.00,2026-03-02,,,\n"
)
Status = ImportBatch.Status


@pytest.fixture
def members(make_member):
    return make_member("M-0001"), make_member("M-0002")


def upload(client, text, name="march.csv", kind="transactions"):
    return client.post(
        reverse("admin:core_importbatch_upload"),
        {"kind": kind, "file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


def page(client, batch) -> str:
    return client.get(reverse("admin:core_importbatch_change", args=[batch.pk])).content.decode()


def refused_in_words(client, batch, said: str) -> None:
    """A batch that cannot be confirmed: its page says why in place of the button, and
    a confirmation sent all the same (a page left open) is refused with the same words,
    the batch still waiting."""
    shown = page(client, batch)
    assert html.escape(said) in shown and "Confirm the import" not in shown
    confirmed = client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]), follow=True)
    assert any(said in str(m) for m in confirmed.context["messages"])
    assert ImportBatch.objects.get(pk=batch.pk).status == Status.CHECKED


def test_an_upload_is_checked_then_imported_once_confirmed(login, client, members, on_commit):
    agent = login("CX agent")
    before = ledger_state()
    # when the file is uploaded, a worker checks it: nothing written yet
    on_commit(lambda: upload(client, GOOD))
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.rows, batch.new, batch.members) == (Status.CHECKED, 3, 3, 2)
    assert ledger_state() == before
    shown = page(client, batch)
    assert "What the import will do" in shown and "Confirm the import" in shown
    # when confirmed, a worker imports it
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk])))
    batch.refresh_from_db()
    assert (batch.status, batch.new, batch.uploaded_by, batch.imported_by) == (
        Status.DONE,
        3,
        agent,
        agent,
    )
    assert summary(members[0])["available"] == 120 - 20
    assert set(Transaction.objects.values_list("batch", flat=True)) == {batch.pk}
    assert set(LedgerEntry.objects.values_list("batch", flat=True)) == {batch.pk}
    assert "Its transactions" in page(client, batch)
    listed = client.get(
        reverse("admin:points_transaction_changelist"), {"batch__id__exact": batch.pk}
    )
    assert listed.status_code == 200 and "T-3" in listed.content.decode()


def test_a_file_with_bad_rows_imports_nothing_and_lists_every_bad_row(
    login, client, members, on_commit
):
    login("CX agent")
    bad = GOOD + "T-4,M-9999,purchase,10.00,2026-03-04,,,\nT-5,M-0001,purchase,=1+1,2026-03-04,,,\n"
    before = ledger_state()
    on_commit(lambda: upload(client, bad))
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.error_count) == (Status.INVALID, 2)
    shown = page(client, batch)
    assert "M-9999" in shown and "Confirm the import" not in shown
    errors = client.get(reverse("admin:core_importbatch_errors", args=[batch.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(errors.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["line", "column", "reason"]
    assert [r[0] for r in rows[1:]] == ["5", "6"]
    assert all(not cell.startswith("=") for row in rows for cell in row)  # formulae escaped
    assert ledger_state() == before
    # and it cannot be confirmed
    client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))
    assert ImportBatch.objects.get().status == Status.INVALID


def test_the_page_follows_a_step_and_a_silent_worker_fails_the_batch(login, client, members):
    login("CX agent")
    upload(client, GOOD)  # queued after commit: no worker has taken it yet
    batch = ImportBatch.objects.get()
    state = client.get(reverse("admin:core_importbatch_state", args=[batch.pk])).json()
    assert (state["label"], state["done"]) == ("Waiting for a worker", False)
    # a worker took it, reported half of it, then its process died
    caches_key = batches.progress_key(batch)
    progress.caches["progress"].set(caches_key, {"percent": 50, "alive": time.time() - 61})
    state = client.get(reverse("admin:core_importbatch_state", args=[batch.pk])).json()
    assert (state["status"], state["done"]) == (Status.FAILED, True)
    assert "stopped before it ended" in ImportBatch.objects.get().failure
    # run again
    client.post(reverse("admin:core_importbatch_run_again", args=[batch.pk]))
    batches.check(batch.pk)  # the worker
    assert ImportBatch.objects.get().status == Status.CHECKED


def test_an_import_that_stops_on_an_error_writes_nothing_and_can_run_again(
    login, client, members, on_commit, monkeypatch
):
    login("CX agent")
    on_commit(lambda: upload(client, GOOD))
    batch = ImportBatch.objects.get()
    before = ledger_state()

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("points.services.importing.programme", broken)
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk])))
    batch.refresh_from_db()
    assert batch.status == Status.FAILED and "the database went away" in batch.failure
    assert ledger_state() == before
    monkeypatch.undo()
    on_commit(lambda: client.post(reverse("admin:core_importbatch_run_again", args=[batch.pk])))
    assert ImportBatch.objects.get().status == Status.DONE
    assert Transaction.objects.count() == 3


def test_an_import_chosen_to_break_a_deadlock_runs_again_by_itself(
    login, client, members, on_commit, monkeypatch
):
    # given: PostgreSQL aborts the import's first try to break a deadlock with a till's
    # purchase (a friend's first purchase paying its referrer, both in the file)
    login("CX agent")
    on_commit(lambda: upload(client, GOOD))
    batch = ImportBatch.objects.get()
    real, tries = batches._run_step, []

    def first_try_aborted(*args, **kwargs):
        tries.append(1)
        if len(tries) == 1:
            raise deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr(batches, "_run_step", first_try_aborted)
    # when
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk])))
    # then: imported, with no failure for operations to run again
    batch.refresh_from_db()
    assert (batch.status, batch.failure, len(tries)) == (Status.DONE, "", 2)
    assert Transaction.objects.count() == 3


def deadlock():
    from django.db import OperationalError

    class Aborted(Exception):
        sqlstate = "40P01"  # PostgreSQL's deadlock_detected

    error = OperationalError("deadlock detected")
    error.__cause__ = Aborted()
    return error


def test_the_same_file_twice_adds_nothing_the_second_time(login, client, members, on_commit):
    login("CX agent")
    for _ in range(2):
        on_commit(lambda: upload(client, GOOD))
        batch = ImportBatch.objects.latest("pk")
        on_commit(
            lambda b=batch: client.post(reverse("admin:core_importbatch_confirm", args=[b.pk]))
        )
    first, second = ImportBatch.objects.order_by("pk")
    assert (first.new, second.new, second.skipped) == (3, 0, 3)
    assert Transaction.objects.count() == 3
    # the second is checked, and says there is nothing to confirm, rather than asking
    assert second.status == Status.CHECKED
    shown = page(client, second)
    assert "Nothing to import: every row of this file was imported before (3 already" in shown
    assert "Confirm the import" not in shown


@pytest.mark.parametrize("role, status", [("Marketer", 200), (None, 403)])
def test_only_staff_who_may_import_transactions_upload_them(login, client, role, status):
    # a marketer may upload point grants, not transactions; staff of no group, nothing
    login(role)
    response = upload(client, GOOD)
    assert response.status_code == status
    if status == 200:
        assert "Select a valid choice" in response.content.decode()
    assert not ImportBatch.objects.exists()


@pytest.mark.parametrize(
    "method, page",
    [("get", "change/"), ("get", "state/"), ("get", "errors.csv"), ("post", "confirm/")],
)
def test_an_import_that_does_not_exist_is_a_404_whatever_its_id(login, client, method, page):
    login("CX agent")
    for batch_id in ("abc", "999999"):
        response = getattr(client, method)(f"/admin/core/importbatch/{batch_id}/{page}")
        assert response.status_code == 404, (batch_id, page)


def test_a_file_over_the_limit_is_refused_with_its_size(login, client, settings):
    login("Operations")
    settings.IMPORT_MAX_BYTES = 100
    response = upload(client, GOOD)
    assert "the most a file may be is 100" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_the_imports_list_runs_a_bounded_number_of_queries(
    login, client, members, on_commit, django_assert_max_num_queries
):
    login("Operations")
    for n in range(15):
        upload(client, GOOD, name=f"file-{n}.csv")
    with django_assert_max_num_queries(10):
        listed = client.get(reverse("admin:core_importbatch_changelist")).content.decode()
    assert "file-14.csv" in listed and "Upload a file" in listed


def test_the_imports_list_names_who_confirmed_each_import(login, client, members, on_commit):
    # given: a file uploaded by operations, confirmed by a CX agent
    login("Operations")
    on_commit(lambda: upload(client, GOOD))
    batch = ImportBatch.objects.get()
    login("CX agent")
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk])))

    # when
    listed = client.get(reverse("admin:core_importbatch_changelist")).content.decode()

    # then
    row = listed.split("march.csv")[1].split("</tr>")[0]
    assert "Confirmed by" in listed
    assert '<td class="field-confirmed_by">cx-agent</td>' in row


def test_uploaded_files_are_deleted_after_the_days_kept(login, client, members, settings):
    login("Operations")
    upload(client, GOOD)
    batch = ImportBatch.objects.get()
    ImportBatch.objects.filter(pk=batch.pk).update(status=Status.CHECKED)
    stored = batch.file.path
    later = timezone.now() + timedelta(days=settings.IMPORT_FILE_DAYS - 1)
    assert batches.delete_old_files(now=later) == 0
    assert batches.delete_old_files(now=later + timedelta(days=2)) == 1
    batch.refresh_from_db()
    assert not batch.file and not os.path.exists(stored)


def test_point_grants_upload_is_attributed_to_the_uploader(login, client, members, on_commit):
    marketer = login("Marketer")
    grants = "external_id,member,points,reason,definition\nG-1,M-0001,500,Parcel late,\n"
    on_commit(lambda: upload(client, grants, kind="grants"))
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.new) == (Status.CHECKED, 1)
    on_commit(lambda: client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk])))
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert (entry.points, entry.created_by, entry.batch_id) == (500, marketer, batch.pk)
    assert summary(members[0])["available"] == 500


def test_a_cx_agent_uploads_grants_only_if_their_group_may(login, client, members):
    login("CX agent")
    grants = "external_id,member,points,reason,definition\nG-1,M-0001,500,Parcel late,\n"
    assert upload(client, grants, kind="grants").status_code == 200  # the form again
    assert not ImportBatch.objects.exists()


def test_the_upload_page_shows_the_header_of_each_file_the_user_may_import(login, client):
    login("Operations")  # transactions only
    page = client.get(reverse("admin:core_importbatch_upload")).content.decode()
    assert (
        "<code>external_id,member,kind,amount,occurred_at,channel,store,original_external_id</code>"
        in page
    )
    assert "external_id,member,points,reason,definition" not in page  # grants: not theirs


def test_grants_whose_uploader_may_no_longer_grant_are_not_confirmed_by_another(
    login, client, members, on_commit, django_user_model
):
    # given: a marketer's grants file, checked; the marketer then leaves the group
    marketer = login("Marketer")
    grants = "external_id,member,points,reason,definition\nG-1,M-0001,10,Sorry,\n"
    on_commit(lambda: upload(client, grants, kind="grants"))
    batch = ImportBatch.objects.get()
    marketer.groups.clear()

    # when: a supervisor opens it and confirms it
    login("CX supervisor")

    # then: refused in words, nothing granted in the marketer's name
    said = (
        "This file's grants would be given in the name of marketer, who uploaded it: "
        "marketer may not import point grants"
    )
    refused_in_words(client, batch, said)
    assert not LedgerEntry.objects.exists()


def test_grants_are_imported_by_their_uploader_only(login, client, members, on_commit):
    # given: a supervisor's grants file, checked
    supervisor = login("CX supervisor")
    grants = "external_id,member,points,reason,definition\nG-1,M-0001,500,Store closed,\n"
    on_commit(lambda: upload(client, grants, kind="grants"))
    batch = ImportBatch.objects.get()

    # when: a marketer, who may import grants too, opens it and confirms it
    login("Marketer")

    # then: refused in words: the grants are the supervisor's to give
    refused_in_words(client, batch, f"Only {supervisor}, who uploaded this file, can import it")
    assert not LedgerEntry.objects.exists()


def test_a_checked_import_whose_file_was_deleted_says_so_instead_of_confirming(
    login, client, members, on_commit, settings
):
    # given: a checked file, deleted after the days kept
    login("Operations")
    on_commit(lambda: upload(client, GOOD))
    batch = ImportBatch.objects.get()
    later = timezone.now() + timedelta(days=settings.IMPORT_FILE_DAYS + 1)
    assert batches.delete_old_files(now=later) == 1

    # when the page is opened, and confirmed all the same (a page left open), then:
    # "upload it again", not an error of the worker's
    said = f"The file was deleted {settings.IMPORT_FILE_DAYS} days after it was uploaded"
    refused_in_words(client, batch, said)


def test_a_file_of_a_header_alone_is_refused_not_offered_as_an_empty_import(
    login, client, members, on_commit
):
    # given: a file holding the header line only
    login("Operations")

    # when: uploaded and checked
    on_commit(lambda: upload(client, HEADER))
    batch = ImportBatch.objects.get()
    shown = page(client, batch)

    # then: refused, saying why; nothing to confirm, and no row counted as wrong
    assert batch.status == Status.INVALID
    assert "the file has no rows below its header" in shown
    assert "The file cannot be imported, for the reason below. No row was read" in shown
    assert "Confirm the import" not in shown and "row cannot be imported" not in shown
    assert (batch.rows, batch.error_count) == (0, 0)


def test_took_is_the_worker_s_time_not_the_wait_for_a_worker(login, client, members):
    """Found by a walkthrough: a file that waited 100 s for a worker "took 109.6 s"."""
    login("Operations")
    upload(client, GOOD)  # queued: no worker takes it yet
    batch = ImportBatch.objects.get()
    ImportBatch.objects.filter(pk=batch.pk).update(started_at=timezone.now() - timedelta(minutes=2))

    batches.check(batch.pk)  # a worker, two minutes later

    took = re.search(r"<th>Took</th><td>([\d.]+) s</td>", page(client, batch)).group(1)
    assert float(took) < 60


def test_a_failed_step_s_took_is_the_worker_s_time_too(login, client, members, monkeypatch):
    # given a file that waited two minutes for a worker, whose step then fails
    login("Operations")
    upload(client, GOOD)
    batch = ImportBatch.objects.get()
    ImportBatch.objects.filter(pk=batch.pk).update(started_at=timezone.now() - timedelta(minutes=2))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(batches, "_keep", broken)
    with pytest.raises(RuntimeError):
        batches.check(batch.pk)

    # then the page says why, and the list's duration is the worker's, not the wait
    assert "The import stopped on an error: disk full. Nothing was written." in page(client, batch)
    listed = client.get(reverse("admin:core_importbatch_changelist")).content.decode()
    took = re.search(r'class="field-duration">([\d.]+) s<', listed).group(1)
    assert float(took) < 60
