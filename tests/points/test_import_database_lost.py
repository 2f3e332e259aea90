"""An import whose database connection is lost while it runs (PostgreSQL restarted)
fails saying so, with nothing written, and can be run again."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection

from core import progress
from core.models import ImportBatch
from points.models import Transaction
from points.services import batches
from tests.conftest import postgres_only

pytestmark = [
    postgres_only,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("media"),
]

FILE = (
    "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
    "T-1,M-0001,purchase,120.50,2026-03-01T10:00:00+01:00,pos,S-1,\n"
)


@pytest.fixture
def confirmed(make_member, staff, monkeypatch):
    """A checked and confirmed file of one purchase, whose run's connection is lost as
    it reads the file: PostgreSQL ends every session when it restarts."""
    make_member("M-0001")
    monkeypatch.setattr(batches, "_queue", lambda step, batch: None)  # steps run here
    batch = batches.upload(
        kind="transactions", file=SimpleUploadedFile("march.csv", FILE.encode()), by=staff
    )
    batches.check(batch.pk)
    batches.confirm(batch=ImportBatch.objects.get(pk=batch.pk), by=staff)
    counted = progress.counted

    def server_restarted(stored, read):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return counted(stored, read)

    monkeypatch.setattr(progress, "counted", server_restarted)
    return ImportBatch.objects.get(pk=batch.pk)


def test_an_import_whose_database_connection_is_lost_fails_saying_so(confirmed):
    # when: the import runs, and its connection is lost
    with pytest.raises(OperationalError):
        batches.run(confirmed.pk)

    # then: failed at once, saying why, nothing written
    confirmed.refresh_from_db()
    assert confirmed.status == ImportBatch.Status.FAILED
    assert confirmed.failure == batches.DATABASE_LOST
    assert not Transaction.objects.exists()


def test_an_import_that_cannot_record_its_failure_has_its_page_record_it(confirmed, monkeypatch):
    # given: the database still away when the worker records the failure
    fail = batches._fail

    def away_once(*args, **kwargs):
        monkeypatch.setattr(batches, "_fail", fail)
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr(batches, "_fail", away_once)
    with pytest.raises(OperationalError):
        batches.run(confirmed.pk)
    assert ImportBatch.objects.get(pk=confirmed.pk).status == ImportBatch.Status.IMPORTING

    # when: the page asks how it goes, the database back (before the heartbeat's minute)
    shown = batches.state(confirmed)

    # then: failed, saying why
    confirmed.refresh_from_db()
    assert shown["done"] and confirmed.status == ImportBatch.Status.FAILED
    assert confirmed.failure == batches.DATABASE_LOST
