"""The member page and list in a real browser: redeeming after a confirmation, and a
member list whose figures fit a laptop's screen."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command

from loyalty_site.demo import load_catalogue
from members.models import Member
from points.services import adjust_points
from rewards.models import Redemption
from tests.browser.test_cx_manager_browser import available_on_page, open_member
from tests.conftest import summary

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_agent_redeems_after_seeing_the_balance_after(page, log_in, make_member, tiers):
    # given: a member with 1,000 points
    load_catalogue(tiers)
    member = make_member("M-50011")
    agent = log_in("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    open_member(page, "M-50011")

    # when: the agent picks the coffee voucher and redeems
    page.locator("#catalogue tr", has_text="Coffee voucher").locator("input[type=radio]").check()
    page.click("#catalogue input[type=submit]")

    # then: a confirmation with the balance after, and nothing spent yet
    page.wait_for_selector("#confirmation")
    assert "after this redemption, 850" in page.inner_text("#balance-after")
    assert not Redemption.objects.exists()

    # when: confirmed
    page.click("#confirmation input[type=submit]")

    # then: back on the member page with the new balance
    page.wait_for_selector(".messagelist")
    assert available_on_page(page) == 850 == summary(member)["available"]
    assert Redemption.objects.filter(member=member).count() == 1


def test_the_member_list_shows_every_column_at_1400_pixels(page, log_in, tmp_path):
    # given: the demo's members
    call_command("seed_demo", members=60, verbosity=0)
    log_in("CX agent")

    # when
    page.goto("/admin/members/member/")

    # then: the points columns are on screen: the table needs no sideways scrolling
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth")
    for column in ("column-points", "column-lifetime"):
        assert page.locator(f"th.{column}").is_visible(), column
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / "members.png")

    # and a member page explains its ledger lines
    member = Member.objects.filter(transactions__kind="return").order_by("pk").first()
    member = member or Member.objects.filter(transactions__isnull=False).order_by("pk").first()
    page.goto(f"/admin/members/member/{member.pk}/change/")
    assert page.locator("#ledger td.cx-balance").count() > 0
    page.screenshot(path=folder / "member.png", full_page=True)


def test_the_ledger_and_the_point_definitions_fit_a_1024_pixel_screen(page, log_in):
    # given: the demo's ledger, a marketer's laptop
    call_command("seed_demo", members=30, verbosity=0)
    log_in("Marketer")
    page.set_viewport_size({"width": 1024, "height": 800})

    for path in ("/admin/points/ledgerentry/", "/admin/points/pointdefinition/"):
        # when
        page.goto(path)

        # then: the last column is on screen, no sideways scrolling
        results = page.locator("#changelist .results")
        assert results.evaluate("el => el.scrollWidth <= el.clientWidth"), path
        last = page.locator("#result_list thead th").last
        assert last.bounding_box()["x"] + last.bounding_box()["width"] <= 1024, path


def test_the_expiry_preview_fits_a_phone_whatever_the_customer_code(
    page, log_in, make_member, staff
):
    """Found by an audit: an erased member's long code (ERASED- and 20 characters)
    widened the preview's table, and the page scrolled sideways on a phone."""
    # given: monthly expiry, and a member with a long code and points at stake
    from django.utils import timezone

    from points.models import ExpiryPolicy

    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": timezone.localdate()}
    )
    member = make_member("ERASED-45cd459b42fc4dc6a914")
    adjust_points(member=member, points=500, reason="Test", by=staff)
    log_in("Marketer")
    page.set_viewport_size({"width": 390, "height": 844})

    # when
    page.goto("/admin/points/expirypolicy/preview/")

    # then: the code is listed, and the page needs no sideways scrolling
    assert "ERASED-45cd459b42fc4dc6a914" in page.inner_text("#expiry-members")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_member_ledger_on_a_phone_keeps_its_rows_short(page, log_in, make_member, buy):
    """Found by an audit: on a phone the ledger's nine columns were squeezed to a few
    letters a line, and each row stood a screen tall."""
    # given: a member with purchases, their explanations a sentence long
    member = make_member("M-50021")
    for amount in ("120.50", "45.00", "300.00"):
        buy(member, amount)
    log_in("CX agent")
    page.set_viewport_size({"width": 390, "height": 844})

    # when
    page.goto(f"/admin/members/member/{member.pk}/change/")

    # then: each row a few lines tall; the ledger scrolls sideways inside its panel
    rows = page.locator("#ledger tbody tr").all()
    heights = [row.bounding_box()["height"] for row in rows]
    assert heights and max(heights) < 100, heights
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # and a keyboard reaches the panel to scroll it: it is a named region in the Tab order
    region = page.get_by_role("region", name="Ledger")
    region.focus()
    for _ in range(5):
        region.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#ledger .cx-body').scrollLeft > 0")


def test_the_upload_page_on_a_phone_needs_no_sideways_scrolling(page, log_in):
    """Found by an audit: the files' headers, one long word each, made the page 714 px
    wide on a 390 px screen."""
    log_in("superuser")  # every kind of file: the longest headers
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto("/admin/core/importbatch/upload/")

    assert "opening_lifetime" in page.inner_text("#upload-form")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
