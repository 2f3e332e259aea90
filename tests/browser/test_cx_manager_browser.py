"""What CX agents and marketers do in the CX Manager, in a real browser."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty_site.demo import load_catalogue
from members.models import Member
from points.models import Campaign, ExpiryPolicy, LedgerEntry
from tests.conftest import summary
from tiers.models import DegradationPolicy, Tier

# The live server reads what the tests write: real commits, and the migrations' rows
# (groups, definitions) put back after each test.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def available_on_page(page) -> int:
    return int(page.inner_text("#available").replace(",", ""))


def open_member(page, query: str):
    page.fill("input[name=q]", query)
    page.press("input[name=q]", "Enter")
    page.click(f"#result_list a:text('{query}')")
    page.wait_for_selector("#assign-points, #catalogue")


def test_an_agent_finds_a_member_and_assigns_points(page, log_in, make_member, buy):
    member = make_member("M-50001")
    buy(member, "400")
    log_in("CX agent")

    open_member(page, "M-50001")
    assert available_on_page(page) == 400
    page.fill("#id_points", "250")
    page.fill("#id_reason", "Goodwill: parcel arrived late")
    page.click("#assign-points input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    assert "now has 650 points available" in page.inner_text(".messagelist")
    assert available_on_page(page) == 650
    assert "Goodwill: parcel arrived late" in page.inner_text("#ledger")
    assert summary(member)["available"] == 650


def test_a_double_submit_assigns_the_points_once(page, log_in, make_member):
    member = make_member("M-50002")
    log_in("CX agent")
    open_member(page, "M-50002")
    page.fill("#id_points", "250")
    page.fill("#id_reason", "Birthday gift")
    # What the browser would send again on a re-post: the same form, the same token.
    sent = page.evaluate(
        "() => Object.fromEntries(new FormData(document.querySelector('#assign-points form')))"
    )

    page.dblclick("#assign-points input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    status = page.evaluate(
        """async ([action, data]) => {
            const response = await fetch(action, {method: 'POST', body: new URLSearchParams(data)});
            return response.status;
        }""",
        [page.get_attribute("#assign-points form", "action"), sent],
    )
    page.reload()

    assert status == 200  # followed to the member page
    assert available_on_page(page) == 250
    assert LedgerEntry.objects.filter(member=member, kind="adjustment").count() == 1
    assert summary(member)["available"] == 250


def test_an_agent_sees_a_platinum_reward_locked(page, log_in, make_member, tiers):
    load_catalogue(tiers)
    make_member("M-50003")
    log_in("CX agent")

    open_member(page, "M-50003")

    row = page.locator("#catalogue tr", has_text="Weekend in Seville")
    assert row.locator("input[type=radio]").is_disabled()
    assert "Needs Platinum" in row.inner_text()
    assert (
        not page.locator("#catalogue tr", has_text="Coffee voucher")
        .locator("input[type=radio]")
        .is_disabled()
        or summary(Member.objects.get(external_id="M-50003"))["available"] < 150
    )


def test_a_marketer_changes_a_threshold_and_sees_the_preview(page, log_in, make_member, buy):
    for code, amount in [("M-50004", "1200"), ("M-50005", "1800"), ("M-50006", "2600")]:
        buy(make_member(code), amount)
    log_in("Marketer")
    silver = Tier.objects.get(code="silver")

    page.goto(f"/admin/tiers/tier/{silver.pk}/change/")
    page.fill("#id_threshold", "2000")
    page.click("input[name=_save]")

    page.wait_for_selector("#threshold-change")
    assert "from 1,000 to 2,000" in page.inner_text("#threshold-change")
    assert page.inner_text("#moves-down") == "2" and page.inner_text("#moves-up") == "0"
    assert Tier.objects.get(pk=silver.pk).threshold == 1000
    # "No, go back" is the form again (Django's cancel.js: no inline script)
    page.click("text=No, go back")
    page.wait_for_selector("#id_threshold")
    assert page.url.endswith(f"/admin/tiers/tier/{silver.pk}/change/")
    page.click("input[name=_save]")
    page.wait_for_selector("#threshold-change")
    page.click("input[type=submit][value^='Yes']")
    page.wait_for_selector(".messagelist")
    assert Tier.objects.get(pk=silver.pk).threshold == 2000


def test_dashboard_and_member_page_with_demo_data(page, log_in, tmp_path):
    """The demo as a user sees it; SCREENSHOTS_DIR=docs/screenshots keeps the pictures."""
    call_command("seed_demo", members=150, verbosity=0)
    degradation = DegradationPolicy.current()
    degradation.enabled = True
    degradation.save()
    expiry = ExpiryPolicy.current()
    expiry.cycle, expiry.starts_on = "quarterly", timezone.localdate()
    expiry.save()
    log_in("superuser", username="admin-demo")
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    page.goto("/admin/")
    for panel in ["#members-per-tier", "#next-expiry", "#closest-to-next-tier", "#at-risk"]:
        assert page.is_visible(panel), panel
    assert "points at stake" in page.inner_text("#next-expiry")
    page.screenshot(path=folder / "dashboard.png", full_page=True)

    member = Member.objects.filter(qualified_tier__code="gold").order_by("pk").first()
    page.goto(f"/admin/members/member/{member.pk}/change/")
    assert "points to Platinum" in page.inner_text("#to-next-tier")
    page.screenshot(path=folder / "member.png", full_page=True)


def test_an_agent_jumps_to_a_member_by_typing_a_name(page, log_in, make_member):
    member = make_member("M-50007")
    Member.objects.filter(pk=member.pk).update(first_name="Inés", last_name="Zubizarreta")
    log_in("CX agent")

    page.click("#go-to-member .select2-selection")
    # Into the dropdown's own search box: keys typed before select2 focuses it are lost.
    page.locator(".select2-container--open .select2-search__field").press_sequentially("zubiz")
    page.click(".select2-results__option:has-text('M-50007')")

    page.wait_for_url(f"**/admin/members/member/{member.pk}/change/")
    assert "Zubizarreta" in page.inner_text("h1, h2")


def test_programme_analytics_with_demo_data(page, log_in, tmp_path):
    """A marketer reads the demo's year in charts; SCREENSHOTS_DIR keeps the picture."""
    call_command("seed_demo", members=150, verbosity=0)  # takes the year's snapshots
    log_in("Marketer")
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    page.goto("/admin/")
    page.click("text=Programme analytics")
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length === 5")

    assert "EUR" in page.inner_text("#liability")
    # points issued and points spent, of one unit, on one scale (found by a walkthrough:
    # on two axes, 32,200 redeemed stood as tall as 549,173 issued)
    months = "Chart.getChart(document.querySelector('canvas[data-chart=months]'))"
    assert page.evaluate(f"() => Object.keys({months}.scales)") == ["x", "y"]
    page.click("#chart-tiers summary")
    assert page.locator("#chart-tiers tbody tr").count() >= 300  # a year of days
    with page.expect_download() as download:
        page.click("#chart-months a:has-text('Download CSV')")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "month,held at start,issued,redeemed,expired,returned,held at end"
    assert len(lines) >= 12
    page.click("#chart-tiers summary")  # folded again for the picture
    page.click("#chart-campaigns summary")
    campaigns = page.inner_text("#chart-campaigns tbody")
    assert "Birthday double points" in campaigns and "Flagship big basket" in campaigns
    page.click("#chart-campaigns summary")
    page.screenshot(path=folder / "analytics.png", full_page=True)


def test_campaign_audiences_and_referrals_with_demo_data(page, log_in, tmp_path):
    """A marketer reads whom the birthday campaign reaches; an agent sees who referred
    whom. SCREENSHOTS_DIR keeps the pictures."""
    call_command("seed_demo", members=150, verbosity=0)
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    log_in("Marketer")
    birthday = Campaign.objects.get(name="Birthday double points")
    page.goto(f"/admin/points/campaign/{birthday.pk}/change/")
    reach = page.inner_text("#campaign-reach")
    assert reach.startswith("Reaches ") and "whose birthday is in" in reach
    assert page.is_checked("#id_birthday_month_only")
    page.screenshot(path=folder / "campaign-audience.png", full_page=True)

    page.context.clear_cookies()  # logged out
    log_in("CX agent", username="agent-demo")
    referrer = Member.objects.filter(referrals__isnull=False).order_by("pk").first()
    page.goto(f"/admin/members/member/{referrer.pk}/change/")
    assert "Referred " in page.inner_text("#referrals")
    page.screenshot(path=folder / "member-referrals.png", full_page=True)
