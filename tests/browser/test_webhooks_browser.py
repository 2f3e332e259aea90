"""A superuser connects the CRM to the programme's webhooks, in a real browser, and a
real receiver on 127.0.0.1 hears the members' tier changes."""

import os
import re
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from api.tasks import send_webhooks_task
from core.models import WebhookDelivery, WebhookEndpoint
from tests.api.receiver import start_receiver

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_webhook_pages_with_demo_data(page, log_in, make_member, buy, tmp_path):
    """SCREENSHOTS_DIR=docs/screenshots keeps the pictures."""
    receiver, server = start_receiver()
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        log_in("superuser")
        page.goto("/admin/api/webhookendpoint/add/")
        page.fill("#id_url", receiver.url)
        page.fill("#id_description", "CRM: tier pushes")
        page.check("input[value='member.tier_changed']")
        page.check("input[value='redemption.created']")
        page.click("input[name=_save]")
        message = page.inner_text(".messagelist")
        secret = re.search(r"whsec_[A-Za-z0-9+/=]+", message).group(0)
        assert "not shown again" in message
        page.click("#toggle-nav-sidebar")  # more room for the lists (kept while logged in)
        page.screenshot(path=folder / "webhook-endpoints.png", full_page=True)

        # Members cross tiers; the receiver fails the first request once.
        receiver.answers = [500]
        for code, amount in [("M-70001", 1200), ("M-70002", 3500), ("M-70003", 400)]:
            buy(make_member(code), amount)
        send_webhooks_task.delay()

        signer = Webhook(secret)
        heard = [signer.verify(r.body, r.headers)["data"] for r in receiver.received]
        assert sorted(d["member"] for d in heard) == ["M-70001", "M-70002"]
        page.goto("/admin/api/webhookdelivery/")
        rows = page.inner_text("#result_list")
        assert "M-70001" in rows and "M-70002" in rows and "M-70003" not in rows
        assert "Delivered" in rows and "Pending" in rows and "HTTP 500" in rows
        page.screenshot(path=folder / "webhook-deliveries.png", full_page=True)

        # The pending one is sent again at once with the action.
        page.check("#result_list tbody tr:has-text('Pending') input.action-select")
        page.select_option("select[name=action]", "resend")
        page.click("button[name=index]")
        assert "1 deliveries queued again" in page.inner_text(".messagelist")
        send_webhooks_task.delay()
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
        assert WebhookEndpoint.objects.get().secret == secret
    finally:
        server.shutdown()
