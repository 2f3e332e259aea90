"""An import's file and its error report are kept IMPORT_FILE_DAYS (30) days, then
deleted (rules.md, Erasing a member): the errors its page lists go with them, since they
name the customer codes of the file (an erased customer's too); the counts stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import ImportBatch
from points.services import batches
from tests.points.test_import_batches import HEADER, page, upload

pytestmark = pytest.mark.django_db

BAD = HEADER + "T-1,M-GONE,purchase,120.50,2026-03-01T10:00:00+01:00,pos,S-1,\n"


def test_the_errors_an_import_page_lists_are_deleted_with_its_file(
    client, login, tiers, on_commit, settings
):
    # given: a file refused for a customer code no member has (say, erased since)
    login("Operations")
    on_commit(lambda: upload(client, BAD))
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.INVALID
    assert "M-GONE" in page(client, batch)

    # when: the days its files are kept are over
    later = timezone.now() + timedelta(days=settings.IMPORT_FILE_DAYS + 1)
    assert batches.delete_old_files(now=later) == 1

    # then: the page names no code, says why, and keeps the counts
    shown = page(client, batch)
    assert "M-GONE" not in shown
    assert "Download every error" not in shown
    assert "1 row cannot be imported; nothing was written." in shown
    assert (
        f"The file and its error report were deleted {settings.IMPORT_FILE_DAYS} days after "
        "the upload, as every import's are."
    ) in shown
    assert batches.delete_old_files(now=later) == 0  # once
