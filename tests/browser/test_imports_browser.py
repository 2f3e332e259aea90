"""Operations import a file in the CX Manager, in a real browser: upload, the check's
progress bar moving without a reload, the summary, confirm, done."""

import os
import time
from pathlib import Path

import pytest

from core import progress
from core.models import ImportBatch
from points.models import Transaction
from points.services import batches

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_an_import_with_demo_data(page, log_in, make_member, tmp_path, monkeypatch):
    """SCREENSHOTS_DIR=docs/screenshots keeps the pictures."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 21):
        make_member(f"M-{n:04d}")
    rows = [
        f"T-{n},M-{n % 20 + 1:04d},purchase,{n}.50,2026-03-0{n % 9 + 1},pos,S-1,"
        for n in range(200)
    ]
    csv_file = tmp_path / "march.csv"
    csv_file.write_text(HEADER + "\n".join(rows) + "\n")
    # The worker is held back so that the page can be seen following it.
    queued = []
    monkeypatch.setattr(batches, "_queue", lambda step, batch: queued.append((step, batch.pk)))
    log_in("Operations")

    page.goto("/admin/core/importbatch/")
    page.click("text=Upload a file")
    page.select_option("#id_kind", "transactions")
    page.set_input_files("#id_file", str(csv_file))
    page.click("input[type=submit]")
    page.wait_for_selector("#progress")
    assert page.inner_text("#status") == "Waiting for a worker"

    # the worker reports 40%, then 80%: the bar follows without a reload
    batch = ImportBatch.objects.get()
    key = batches.progress_key(batch)
    progress.caches["progress"].set(key, {"percent": 40, "alive": time.time()})
    page.wait_for_function("() => document.getElementById('progress').value == 40")
    page.screenshot(path=folder / "import-progress.png", full_page=True)
    progress.caches["progress"].set(key, {"percent": 80, "alive": time.time()})
    page.wait_for_function("() => document.getElementById('progress').value == 80")

    # the check ends: the page shows what the import would do
    batches.check(batch.pk)
    page.wait_for_selector("#summary")
    assert "200" in page.inner_text("#summary")
    page.screenshot(path=folder / "import-checked.png", full_page=True)

    page.click("#confirm input[type=submit]")
    page.wait_for_selector("#progress")
    batches.run(batch.pk)
    page.wait_for_selector("text=Its transactions")
    assert "Imported" in page.inner_text("#status")
    assert Transaction.objects.filter(batch=batch).count() == 200
    assert [step for step, _ in queued] == ["check", "run"]
