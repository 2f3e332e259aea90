"""A transactions file as operations send it, for the tests of the transactions import:
imported through the service, what an import may write, or uploaded through the
admin's import page."""

import io

from members.models import Member
from points.models import LedgerEntry, Transaction
from points.resources import read_transactions
from points.services import import_transactions

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


def run(text, *, dry_run=False, bom=False, now=None):
    data = (("\ufeff" if bom else "") + HEADER + text).encode()
    rows, errors = read_transactions(io.BytesIO(data))
    return import_transactions(rows, errors=errors, dry_run=dry_run, now=now)


def state():
    return (
        Transaction.objects.count(),
        LedgerEntry.objects.count(),
        list(Member.objects.order_by("pk").values_list("points_balance", "lifetime_points")),
    )


def upload_bytes(client, data: bytes, name="t.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    csv_file = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(
        reverse("admin:points_transaction_import"), {"import_file": csv_file, "format": "0"}
    )
