"""Every CSV staff download opens in Excel with its accents as written: UTF-8 with a
byte order mark, which Excel on Windows needs to read the file as UTF-8 (found by an
audit: "José Muñoz" showed as "JosÃ© MuÃ±oz"). The imports read such a file too."""

import codecs

import pytest
from django.urls import reverse

from core.models import ImportBatch
from members.services import enroll_member
from tests.loyalty_site.test_analytics_page import year  # noqa: F401 (a fixture)
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def opened_in_excel(content: bytes) -> str:
    """The text as Excel on Windows reads a CSV file: UTF-8 after a byte order mark, the
    computer's code page (Windows-1252 in Spain) without one."""
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8) :].decode("utf-8")
    return content.decode("cp1252", errors="replace")


@pytest.fixture
def jose(tiers):
    return enroll_member(
        external_id="M-JOSE", email="jose@example.es", first_name="José", last_name="Muñoz"
    )


def test_the_member_export_reads_right_in_excel(admin_client, jose):
    fields = {f"memberresource_{f}": "on" for f in ["external_id", "first_name", "last_name"]}
    export = admin_client.post(
        reverse("admin:members_member_export"), {"format": "0", "resource": "0", **fields}
    )
    assert "M-JOSE,José,Muñoz" in opened_in_excel(export.content)


def test_the_transaction_export_reads_right_in_excel(admin_client, jose, buy):
    buy(jose, "10.00", external_id="T-ÑANDÚ-1")
    export = admin_client.post(
        reverse("admin:points_transaction_export"),
        {"format": "0", "resource": "0", "transactionresource_external_id": "on"},
    )
    assert "T-ÑANDÚ-1" in opened_in_excel(export.content)


@pytest.mark.usefixtures("year")
def test_an_analytics_chart_reads_right_in_excel(admin_client):
    Tier.objects.filter(code="bronze").update(name="Básico")
    download = admin_client.get("/admin/analytics/tiers.csv")
    assert "Básico" in opened_in_excel(download.content)


def test_an_import_s_errors_report_reads_right_in_excel(client, login, jose, on_commit):
    from tests.points.test_import_batches import GOOD, upload

    login("CX agent")
    on_commit(lambda: upload(client, GOOD + "T-4,M-ÑANDÚ,purchase,10.00,2026-03-04,,,\n"))
    batch = ImportBatch.objects.get()
    errors = client.get(reverse("admin:core_importbatch_errors", args=[batch.pk]))
    assert "M-ÑANDÚ" in opened_in_excel(b"".join(errors.streaming_content))


def test_the_member_export_keeps_phone_numbers_and_words_as_text_and_numbers_as_numbers(
    admin_client, tiers, no_campaigns, buy, staff
):
    """Found by a review: "+34600000001" and "-Infinity" went out as they are, which a
    spreadsheet reads as the number 3.46E+10 and as a formula (#NAME?)."""
    from points.services import adjust_points
    from tests.conftest import give_return

    member = enroll_member(
        external_id="M-PLUS", email="p@example.es", first_name="-Infinity", phone="+34600000001"
    )
    bought = buy(member, "20")  # spent, then returned: -20
    adjust_points(member=member, points=-20, reason="Spent at the counter", by=staff)
    give_return(member, bought, "20")
    fields = ["external_id", "first_name", "phone", "points_balance"]
    export = admin_client.post(
        reverse("admin:members_member_export"),
        {"format": "0", "resource": "0", **{f"memberresource_{f}": "on" for f in fields}},
    )
    assert "M-PLUS,'-Infinity,'+34600000001,-20" in opened_in_excel(export.content)
