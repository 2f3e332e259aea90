"""Uploaded import files hold customers' personal data: no URL reaches them, whoever
asks; only the permission-checked admin views read them (security audit: they were
stored under MEDIA_ROOT, which the web server serves, at a guessable path, and a file
of HTML there ran script in a superuser's session)."""

import os
import stat
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from core.models import ImportBatch
from core.private_files import PENDING_KEPT_SECONDS, PrivateFiles
from points.services.batches import delete_old_files
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture
from tests.points.test_import_batches import GOOD, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def test_an_uploaded_file_and_its_bad_rows_are_reachable_by_no_url(
    login, client, make_member, on_commit, settings
):
    # given: Operations upload a file whose name and contents a browser would run
    make_member("M-0001")
    login("Operations")
    page = "<script>alert(document.cookie)</script>\n"
    on_commit(lambda: upload(client, GOOD + page, name="report.html"))
    batch = ImportBatch.objects.get()

    # then: nothing of it is in MEDIA_ROOT (served by the web server in front of the
    # app, and by `make run`), and its stored name is random
    assert not any(settings.MEDIA_ROOT.rglob("*.*"))
    assert PrivateFiles().exists(batch.file.name) and PrivateFiles().exists(batch.errors_file.name)
    assert batch.file.name.endswith(".csv") and "report" not in batch.file.name
    # only the batch's page names it, and its bad rows come from the checked view
    assert batch.file_name == "report.html"
    bad_rows = reverse("admin:core_importbatch_errors", args=[batch.pk])
    errors = client.get(bad_rows)
    assert errors.status_code == 200 and errors["Content-Type"].startswith("text/csv")
    assert Client().get(bad_rows).status_code == 302  # to the login page


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("latest_after")  # the later tests of this worker need core's latest
def test_files_kept_before_move_out_of_media_root(django_user_model):
    # given: a batch kept before, its file and bad rows under MEDIA_ROOT
    migrate([("core", "0010_import_batch_given_back")])
    kept, bad_rows = "imports/2026/11/march.csv", "imports/errors/2026/11/7-errors.csv"
    default_storage.save(kept, ContentFile(GOOD.encode()))
    default_storage.save(bad_rows, ContentFile(b"line,column,reason\n"))
    ImportBatch.objects.bulk_create(
        [
            ImportBatch(
                kind="transactions",
                file=kept,
                errors_file=bad_rows,
                file_name="march.csv",
                uploaded_by=django_user_model.objects.create_user("ops", is_staff=True),
            )
        ]
    )

    # when: the upgrade
    migrate([("core", "0011_private_import_files")])

    # then: they are in the private folder, under the names the batch has
    private = PrivateFiles()
    assert not default_storage.exists(kept) and not default_storage.exists(bad_rows)
    assert private.open(kept).read() == GOOD.encode()
    assert private.exists(bad_rows)
    assert ImportBatch.objects.get().file.open().read() == GOOD.encode()


def test_a_file_gone_from_the_disk_is_said_in_words_not_a_500(
    login, client, make_member, on_commit
):
    """An operator cleaning the disk by hand (or a folder not mounted): the bad rows'
    download was a 500, and a checked file could be confirmed, then failed naming the
    server's path (found by an audit)."""
    # given: a checked file and a file with bad rows, both removed from the disk
    make_member("M-0001")
    login("Operations")
    on_commit(lambda: upload(client, GOOD.replace("M-0002", "M-0001"), name="good.csv"))
    on_commit(lambda: upload(client, GOOD, name="bad.csv"))  # M-0002: no such member
    good, bad = ImportBatch.objects.order_by("pk")
    assert (good.status, bad.status) == ("checked", "invalid")
    for stored in (good.file, bad.errors_file):
        stored.storage.delete(stored.name)

    # when: the bad rows are downloaded, the good file's page opened and confirmed
    download = client.get(reverse("admin:core_importbatch_errors", args=[bad.pk]), follow=True)
    page = client.get(reverse("admin:core_importbatch_change", args=[good.pk])).content.decode()
    confirmed = client.post(reverse("admin:core_importbatch_confirm", args=[good.pk]), follow=True)

    # then: each says it in words; nothing was queued or written
    told = " ".join(str(m) for m in download.context["messages"])
    assert download.status_code == 200 and "no longer where it was stored" in told
    assert "The file is no longer where it was stored" in page and "Confirm the import" not in page
    said = " ".join(str(m) for m in confirmed.context["messages"])
    assert "upload it again" in said and "/" not in said.split("(")[0]
    assert ImportBatch.objects.get(pk=good.pk).status == "checked"


def test_import_files_are_readable_by_the_application_s_user_only(
    login, client, make_member, on_commit
):
    make_member("M-0001")
    login("Operations")
    on_commit(lambda: upload(client, GOOD, name="march.csv"))
    batch = ImportBatch.objects.get()

    path = Path(batch.file.path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_previewed_file_waits_in_the_private_folder_and_is_swept_if_never_confirmed(
    admin_client, make_member, settings
):
    """The Transactions page's import kept a previewed file in one machine's temporary
    folder, outside IMPORTS_ROOT, for ever when never confirmed; a confirmation reaching
    another web machine said "already imported" (found by an audit)."""
    # given: a file previewed on the Transactions page
    make_member("M-0001")
    preview = admin_client.post(
        reverse("admin:points_transaction_import"),
        {"import_file": SimpleUploadedFile("day.csv", GOOD.encode(), "text/csv"), "format": "0"},
    )
    assert preview.status_code == 200
    pending = list((settings.IMPORTS_ROOT / "pending").iterdir())

    # then: it waits in the private folder, the application user's alone
    assert len(pending) == 1 and stat.S_IMODE(pending[0].stat().st_mode) == 0o600

    # when: a day and more goes by without a confirmation, and the nightly clean-up runs
    old = time.time() - PENDING_KEPT_SECONDS - 60
    os.utime(pending[0], (old, old))
    delete_old_files()

    # then: it is gone
    assert not pending[0].exists()


def files_in(root) -> list[Path]:
    return [path for path in Path(root).rglob("*") if path.is_file()]


def test_a_file_whose_batch_could_not_be_saved_is_not_kept(settings, staff, monkeypatch):
    # given: the database lost as the upload's batch is saved
    from django.db import OperationalError

    from points.services import batches

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ImportBatch, "save", lost)
    data = (GOOD + "T-9,M-ANA-GARCIA,purchase,10,2026-03-01,,,\n").encode()

    # when
    with pytest.raises(OperationalError):
        batches.upload(kind="transactions", file=SimpleUploadedFile("ana.csv", data), by=staff)

    # then: no file of customer codes that no batch names (delete_old_files never would)
    assert files_in(settings.IMPORTS_ROOT) == []


def test_an_errors_report_whose_check_did_not_commit_is_not_kept(
    settings, login, client, make_member, monkeypatch
):
    # given: an uploaded file with a bad row (its check not run yet); the check's batch
    # cannot be saved
    from django.db import OperationalError

    from points.services import batches

    make_member("M-0001")
    login("Operations")
    upload(client, GOOD + "T-9,M-SECRET,purchase,-1,2026-03-01,,,\n")
    batch = ImportBatch.objects.get()
    saved = ImportBatch.save

    def lost_once_reported(self, *args, **kwargs):
        if self.errors_file:  # the step's own save, its report stored
            raise OperationalError("server closed the connection unexpectedly")
        return saved(self, *args, **kwargs)

    monkeypatch.setattr(ImportBatch, "save", lost_once_reported)

    # when
    with pytest.raises(OperationalError):
        batches.check(batch.pk)

    # then: the batch failed, and only its uploaded file is kept
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED and not batch.errors_file
    assert files_in(settings.IMPORTS_ROOT) == [Path(batch.file.path)]
