"""Reasons the programme writes on ledger lines fit the ledger's reason column (255
characters) whole in meaning: a purchase's reason names every factor of its points
(X1), the names shortened alike with an ellipsis when they are too long together;
a reason that cannot keep everything ends with an ellipsis, never cut mid-word."""

import io

import pytest
from django.urls import reverse

from members.services import merge_members
from points.models import Campaign, LedgerEntry, PointDefinition
from points.resources import read_transactions
from points.services import adjust_points, import_transactions
from tests.conftest import at
from tests.points.test_campaign_admin import posted

pytestmark = pytest.mark.django_db

REASON_LENGTH = LedgerEntry._meta.get_field("reason").max_length
HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
# Three campaigns of 100 characters each, the longest name a campaign may have.
PLEDGE = "weekend: double points on every purchase in every store and online for every member"
NAMES = [f"{season} {PLEDGE}".ljust(100, "!") for season in ("Spring", "Summer", "Autumn")]


@pytest.fixture
def long_named_campaigns(tiers):
    for name in NAMES:
        Campaign.objects.create(
            name=name, multiplier=2, starts_at=at("2026-01-01"), ends_at=at("2027-01-01")
        )


def earn_line(member) -> LedgerEntry:
    return LedgerEntry.objects.get(member=member, kind="earn")


def test_a_purchase_under_campaigns_named_at_length_names_every_multiplier(
    member, buy, long_named_campaigns
):
    # when: 10.00 at Bronze x1 under three x2 campaigns: 80 points
    buy(member, "10", when=at("2026-03-02"))

    # then: the line fits, and names the tier and each campaign with its multiplier
    line = earn_line(member)
    assert line.points == 80
    assert len(line.reason) <= REASON_LENGTH
    parts = line.reason.split(", ")
    assert parts[0] == "Bronze x1"
    assert [part.rsplit(" ", 1)[1] for part in parts[1:]] == ["x2", "x2", "x2"]
    for part, name in zip(parts[1:], NAMES, strict=True):
        shortened = part.rsplit(" ", 1)[0]
        assert shortened.endswith("…") and name.startswith(shortened[:-1])
        assert len(shortened) > 40  # each name alike, still readable


def test_short_names_are_left_whole_and_only_the_long_ones_are_shortened(member, buy, tiers):
    # given: a short campaign and three long ones, and an earn rate of 10
    PointDefinition.objects.filter(handle="purchase-points").update(earn_rate=10)
    for name in ["Double", *NAMES]:
        Campaign.objects.create(
            name=name, multiplier=2, starts_at=at("2026-01-01"), ends_at=at("2027-01-01")
        )

    # when
    buy(member, "1", when=at("2026-03-02"))

    # then
    reason = earn_line(member).reason
    assert len(reason) <= REASON_LENGTH
    assert reason.startswith("Purchase points x10, Bronze x1, ")
    assert "Double x2" in reason and reason.count("… x2") == 3


def test_a_file_of_purchases_under_campaigns_named_at_length_is_imported(
    alice, long_named_campaigns
):
    # when: a file with one purchase (on PostgreSQL its line was refused by the column)
    data = (HEADER + "T-1,M-0001,purchase,10,2026-03-29,,,\n").encode()
    rows, errors = read_transactions(io.BytesIO(data))
    report = import_transactions(rows, errors=errors)

    # then
    assert (report.new, report.errors) == (1, [])
    line = earn_line(alice)
    assert line.points == 80 and len(line.reason) <= REASON_LENGTH
    assert line.reason.count(" x2") == 3


def test_a_merge_line_with_a_reason_at_its_limit_ends_with_an_ellipsis(keep, old, staff):
    # given: a reason of 255 characters, as the merge form allows
    adjust_points(member=old, points=400, reason="Welcome", by=staff)
    reason = ("Customer asked to join the accounts " * 8)[:REASON_LENGTH].strip()

    # when
    merge_members(survivor=keep, duplicate=old, by=staff, reason=reason)

    # then: "Merged from M-OLD: ..." shortened with an ellipsis, not cut off
    line = LedgerEntry.objects.get(member=keep, kind="merge")
    assert len(line.reason) <= REASON_LENGTH and line.reason.endswith("…")
    assert line.reason.startswith("Merged from M-OLD: Customer asked to join the accounts")


def test_a_campaign_name_above_100_characters_is_refused_beside_the_field(client, login, tiers):
    # given
    login("Marketer")
    form = posted(name="Spring " * 20)

    # when
    page = client.post(reverse("admin:points_campaign_add"), form)

    # then: said beside the field; nothing saved
    assert page.status_code == 200
    assert page.context["adminform"].form.errors["name"] == [
        "Ensure this value has at most 100 characters (it has 139)."
    ]
    assert not Campaign.objects.filter(name__startswith="Spring Spring").exists()
