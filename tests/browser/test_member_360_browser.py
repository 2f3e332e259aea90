"""Member 360 in a real browser: the member page explains a year of a customer's
points and tiers, as of today and as of a past date, and an agent merges the
customer's old account after the confirmation page (screenshots for the docs)."""

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty_site.demo import load_catalogue
from members.models import Member
from points.models import Campaign, ExpiryPolicy
from points.services import adjust_points, expire_points, record_purchase, record_return
from rewards.models import Reward
from rewards.services import redeem
from tests.conftest import at, summary

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def folder(tmp_path) -> Path:
    path = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def lucia(make_member, tiers, staff):
    """A year of a Silver customer who reached Gold, with quarterly expiry, a spring
    campaign, a return, a redemption and an agent's goodwill; and her old card."""
    load_catalogue(tiers)
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "quarterly", "starts_on": date(2026, 1, 1)}
    )
    Campaign.objects.create(
        name="Spring double",
        multiplier=Decimal(2),
        starts_at=at("2026-03-06", hour=0),
        ends_at=at("2026-03-09", hour=0),
    )
    member = make_member("M-20417", joined_at=at("2026-01-10"))
    old = make_member("M-08812", joined_at=at("2025-11-02"))
    Member.objects.filter(pk=member.pk).update(
        first_name="Lucía", last_name="Ortega", email="lucia.ortega@example.com"
    )
    Member.objects.filter(pk=old.pk).update(
        first_name="Lucía", last_name="Ortega", email="lortega@oldmail.example"
    )

    def purchase(who, amount, day, code, store="STORE-12", channel="pos"):
        expire_points(now=at(day))  # the nightly job, on time
        return record_purchase(
            member=who,
            amount=Decimal(amount),
            occurred_at=at(day),
            external_id=code,
            store=store,
            channel=channel,
        )

    purchase(member, "120.50", "2026-01-15", "T-40012")
    purchase(old, "200.00", "2026-02-02", "T-40178", store="STORE-3")
    purchase(member, "980.00", "2026-02-20", "T-40466")
    bought = purchase(member, "450.00", "2026-03-07", "W-90211", store="", channel="ecommerce")
    record_return(
        member=member,
        amount=Decimal("150.00"),
        occurred_at=at("2026-03-12"),
        external_id="W-90211-R1",
        original_external_id=bought.external_id,
        channel="ecommerce",
    )
    redeem(member=member, reward=Reward.objects.get(name="Free alterations"), now=at("2026-03-20"))
    purchase(member, "310.00", "2026-05-05", "T-41903")
    adjust_points(
        member=member, points=150, reason="Parcel arrived damaged", by=staff, now=at("2026-06-14")
    )
    purchase(member, "400.00", "2026-07-23", "T-42551")
    purchase(old, "640.00", "2026-10-10", "T-43780", store="STORE-3")
    purchase(member, "85.00", "2026-11-02", "T-44302")
    return member


def test_the_member_page_explains_the_points_and_tier_and_an_agent_merges_the_old_card(
    page, log_in, lucia, tmp_path
):
    shots = folder(tmp_path)
    log_in("CX agent")

    # The page today: the tier and every line explained
    page.goto(f"/admin/members/member/{lucia.pk}/change/")
    assert "Gold since 23 Jul 2026: reached 3,000 lifetime points" in page.inner_text("#tier-why")
    ledger = page.inner_text("#ledger")
    assert "earned at Silver x1.5, Spring double x2" in ledger
    assert "takes back its points in proportion" in ledger
    assert "Block expiry at the end of 31 Mar 2026" in ledger
    page.screenshot(path=shots / "member-360.png", full_page=True)

    # As of 15 May: Silver then, and why
    page.fill("#id_as_of", "2026-05-15")
    page.click("#as-of input[type=submit]")
    page.wait_for_selector("#as-of-why")
    assert page.inner_text("#as-of-tier") == "Silver"
    assert "Silver since 20 Feb 2026: reached 1,000 lifetime points" in page.inner_text(
        "#as-of-why"
    )
    page.screenshot(path=shots / "member-360-as-of.png", full_page=True)

    # The customer's old card: reviewed on a confirmation page, nothing written yet
    page.goto(f"/admin/members/member/{lucia.pk}/change/")
    page.fill("#id_merge-duplicate", "M-08812")
    page.fill("#id_merge-reason", "Old card lost; customer keeps her new account")
    page.click("#merge input[type=submit]")
    page.wait_for_selector("#merge-confirmation")
    assert page.inner_text("#after-available").replace(",", "") == str(
        summary(lucia)["available"] + 640
    )
    assert not Member.objects.get(external_id="M-08812").is_merged
    page.screenshot(path=shots / "merge-confirmation.png", full_page=True)

    # Confirmed: merged, back on the member page
    page.click("#merge-confirmation input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert "Merged M-08812 into M-20417" in page.inner_text(".messagelist")
    assert Member.objects.get(external_id="M-08812").merged_into_id == lucia.pk
    assert "Accounts merged into this one: M-08812" in page.inner_text("#merged-from")
