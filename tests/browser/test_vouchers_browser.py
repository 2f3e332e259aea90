"""Vouchers in a real browser (W5): the member page's redemptions with code and status,
the redemption list found by a code as the customer reads it, and an agent marking a
voucher used at the desk. SCREENSHOTS_DIR=docs/screenshots keeps the pictures."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from members.models import Member
from rewards.models import Redemption, VoucherStatus

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_agent_sees_vouchers_finds_one_by_its_code_and_marks_it_used(page, log_in, tmp_path):
    # given: the demo, whose members redeemed vouchers over the year
    call_command("seed_demo", members=150, verbosity=0)
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    agent = log_in("CX agent")
    member = (
        Member.objects.annotate(vouchers=Count("redemptions"))
        .filter(vouchers__gte=2)
        .order_by("-vouchers", "pk")
        .first()
    )

    # when: the agent opens the member page
    page.goto(f"/admin/members/member/{member.pk}/change/")

    # then: each redemption with its code and status
    panel = page.locator("#redemptions")
    for redemption in Redemption.objects.filter(member=member):
        row = panel.locator("tr", has_text=redemption.shown_code)
        assert redemption.voucher_summary in row.inner_text()
    panel.screenshot(path=folder / "member-vouchers.png")

    # when: the redemption list, searched with a code as a customer reads it out
    page.goto("/admin/rewards/redemption/")
    # every column on screen beside the filter: no sideways scrolling
    assert page.locator("#changelist .results").evaluate("el => el.scrollWidth <= el.clientWidth")
    page.screenshot(path=folder / "redemptions.png", full_page=True)
    valid = Redemption.objects.filter(
        Redemption.voucher_status_q(VoucherStatus.VALID, timezone.localdate())
    ).first()
    page.fill("input[name=q]", valid.shown_code.lower())
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/redemption/?q=*")
    page.wait_for_selector("#result_list")

    # then: that voucher alone
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and valid.shown_code in rows.first.inner_text()

    # when: marked used at the desk, after the confirmation
    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "use")
    page.click("button[name=index]")
    page.wait_for_selector("#vouchers-to-use")
    page.screenshot(path=folder / "voucher-use-confirm.png")
    page.click("input[type=submit][value='Yes, mark used']")

    # then
    page.wait_for_selector(".messagelist")
    assert f"Marked used: {valid.shown_code}" in page.inner_text(".messagelist")
    used = Redemption.objects.get(pk=valid.pk)
    assert (used.voucher_status, used.used_by, used.used_channel) == ("used", agent, "manual")
