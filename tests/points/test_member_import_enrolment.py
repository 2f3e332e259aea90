"""The members import enrols new codes in the entry tier, places them by their
opening balances (once), and takes the last purchase of a programme migrating in."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.models import Member, Notification
from points.models import OPENING_BALANCE, LedgerEntry
from tests.conftest import at, summary
from tests.points.member_files import HEADER, run, state
from tiers.services import grant_status

pytestmark = pytest.mark.django_db


def entries(code):
    return list(
        LedgerEntry.objects.filter(member__external_id=code)
        .order_by("pk")
        .values_list("kind", "points", "counts_toward_tier", "redeemable", "definition__handle")
    )


def test_a_new_code_enrols_a_member_in_the_entry_tier_with_its_details(tiers):
    report = run("M-1,ann@example.com,Ann,Lee,+34 600 000 000,2020-01-15,1990-05-01,,\n")
    assert (report.new, report.updated, report.skipped, report.errors) == (1, 0, 0, [])
    ann = Member.objects.get(external_id="M-1")
    assert (ann.email, ann.first_name, ann.last_name, ann.phone) == (
        "ann@example.com",
        "Ann",
        "Lee",
        "+34 600 000 000",
    )
    assert ann.joined_at == at("2020-01-15", 0)  # a date: midnight in the programme's zone
    assert ann.birth_date == date(1990, 5, 1)
    assert (ann.qualified_tier.code, ann.effective_tier.code, ann.best_tier.code) == ("bronze",) * 3
    assert list(ann.tier_changes.values_list("reason", "to_tier__code", "changed_at")) == [
        ("joined", "bronze", at("2020-01-15", 0))
    ]
    assert entries("M-1") == []


def test_only_the_code_and_email_are_required_and_joined_at_defaults_to_now(tiers):
    before = timezone.now()
    report = run("M-1,ann@example.com\n", header="external_id,email\n")
    assert (report.new, report.errors) == (1, [])
    ann = Member.objects.get(external_id="M-1")
    assert ann.joined_at >= before and ann.birth_date is None and ann.phone == ""


def test_opening_balances_place_the_member_in_its_tier_without_bonus_or_message(tiers):
    report = run("M-1,ann@example.com,Ann,,,2019-03-01,,500,3500\n")
    assert (report.new, report.points, report.lifetime, report.tier_changes) == (1, 500, 3500, 1)
    ann = Member.objects.get(external_id="M-1")
    figures = summary(ann)
    assert (figures["available"], figures["pending"], figures["lifetime"]) == (500, 0, 3500)
    assert figures["qualified_tier"].code == figures["effective_tier"].code == "gold"
    assert ann.best_tier.code == "gold"
    # Two entries of the Opening balance definition: points redeemable and not
    # tier-counting, lifetime tier-counting and not redeemable; no tier-up bonus.
    assert entries("M-1") == [
        ("bonus", 500, False, True, OPENING_BALANCE),
        ("bonus", 3500, True, False, OPENING_BALANCE),
    ]
    assert Notification.objects.count() == 0
    assert list(
        ann.tier_changes.order_by("pk").values_list("reason", "from_tier__code", "to_tier__code")
    ) == [("joined", None, "bronze"), ("opening_balance", "bronze", "gold")]
    call_command("check_ledger")


def test_a_later_purchase_pays_the_bonus_of_a_tier_above_the_opening_tier_only(tiers, buy):
    run("M-1,ann@example.com,,,,,,,3500\n")
    ann = Member.objects.get(external_id="M-1")
    buy(ann, "100", when=at("2026-03-02"))  # stays Gold: no bonus
    assert not LedgerEntry.objects.filter(
        member=ann, kind="bonus", definition__handle="tier-up-bonus"
    )
    buy(ann, "2300", when=at("2026-03-03"))  # 3,600 + 4,600 = 8,200: Platinum
    bonuses = LedgerEntry.objects.filter(member=ann, definition__handle="tier-up-bonus")
    assert list(bonuses.values_list("points", flat=True)) == [500]
    assert list(Notification.objects.values_list("kind", flat=True)) == ["tier_up"]


def test_a_known_member_gets_its_opening_balance_once_and_another_amount_is_an_error(
    make_member, buy
):
    ann = make_member("M-1")
    buy(ann, "500", when=at("2026-03-01"))  # 500 lifetime points, Bronze
    report = run("M-1,m-1@example.com,,,,,,200,2600\n")
    assert (report.updated, report.tier_changes, report.errors) == (1, 1, [])
    figures = summary(ann)
    assert (figures["available"], figures["lifetime"]) == (700, 3100)
    assert figures["qualified_tier"].code == "gold"
    assert not LedgerEntry.objects.filter(member=ann, definition__handle="tier-up-bonus")
    assert Notification.objects.count() == 0
    before = state()
    again = run("M-1,m-1@example.com,,,,,,200,2600\n")
    assert (again.updated, again.skipped, again.errors) == (0, 1, [])
    other = run("M-1,m-1@example.com,,,,,,300,2600\n")
    assert [str(e) for e in other.errors] == [
        "line 2, opening_points: M-1 already has an opening balance of 200, not 300: "
        "correct it with a manual adjustment"
    ]
    assert state() == before
    call_command("check_ledger")


def test_check_ledger_passes_after_an_import(make_member, buy, capsys):
    buy(make_member("M-2"), "1200", when=at("2026-03-01"))
    lines = [f"N-{i},n{i}@example.com,,,,2020-01-01,,{i * 7},{i * 450}" for i in range(40)]
    report = run("M-2,m-2@example.com,,,,,,,9000\n" + "\n".join(lines) + "\n")
    assert (report.new, report.updated, report.errors) == (40, 1, [])
    call_command("check_ledger")
    assert "41 members checked, all equal the ledger" in capsys.readouterr().out
    tiers = dict(Member.objects.values_list("external_id", "qualified_tier__code"))
    assert (tiers["N-0"], tiers["N-3"], tiers["N-7"], tiers["N-39"], tiers["M-2"]) == (
        "bronze",
        "silver",
        "gold",
        "platinum",
        "platinum",
    )


def test_G5_an_opening_balance_never_takes_a_member_below_a_running_status_match(
    make_member, tiers, staff
):
    # given: Bronze by points, Gold by a status match
    ann = make_member("M-1")
    grant_status(
        member=ann,
        tier=tiers["gold"],
        until=timezone.localdate() + timedelta(days=90),
        reason="Competitor",
        by=staff,
    )
    # when: the import brings 1,500 lifetime points (Silver)
    report = run("M-1,m-1@example.com,,,,,,,1500\n")
    # then: Silver by points, still Gold by the match
    assert (report.updated, report.errors) == (1, [])
    figures = summary(ann)
    assert (figures["qualified_tier"].code, figures["effective_tier"].code) == ("silver", "gold")
    call_command("check_ledger")


# A programme migrating in: the last purchase there (an optional column)


WITH_LAST_PURCHASE = HEADER.replace("opening_lifetime\n", "opening_lifetime,last_purchase_at\n")


def test_D2_a_member_migrating_in_degrades_from_the_last_purchase_the_file_gives(
    tiers, degradation
):
    """Found by an audit: a Gold member migrating in who joined in 2019 dropped a tier at
    the first night's run, with a "We miss you", since the file could not say she had
    bought last week; one who last bought 100 days ago drops, as D2 says."""
    # given: two Gold members migrating in, one who bought a week ago, one 100 days ago
    now = timezone.now()
    recent, old = (f"{(now - timedelta(days=d)).date()}" for d in (7, 100))
    report = run(
        f"MIG-1,ana@example.com,Ana,,,2019-03-01,,1250,4200,{recent}\n"
        f"MIG-2,bea@example.com,Bea,,,2019-03-01,,1250,4200,{old}\n",
        header=WITH_LAST_PURCHASE,
    )
    assert (report.new, report.errors) == (2, [])

    # when the nightly degradation runs
    from tiers.services import degrade_inactive_members

    degrade_inactive_members(now=now)

    # then only the one without a purchase for 90 days drops
    tiers_now = dict(Member.objects.values_list("external_id", "effective_tier__code"))
    assert tiers_now == {"MIG-1": "gold", "MIG-2": "silver"}
    assert Member.objects.get(external_id="MIG-1").last_purchase_at == at(recent, 0)


@pytest.mark.parametrize(
    "cell, message",
    [
        (
            "2018-01-01",
            "last_purchase_at: is before joined_at: a member buys once they have joined",
        ),
        ("01/03/2019", "last_purchase_at: '01/03/2019' is not a date (2026-11-01)"),
        ("9999-12-31", "last_purchase_at: 9999-12-31 is more than a day in the future"),
    ],
)
def test_a_last_purchase_a_file_cannot_use_is_named_and_nothing_is_written(tiers, cell, message):
    before = state()

    report = run(f"MIG-1,ana@example.com,Ana,,,2019-03-01,,,,{cell}\n", header=WITH_LAST_PURCHASE)

    assert any(message in str(error) for error in report.errors), report.errors
    assert state() == before


def test_a_new_member_s_last_purchase_needs_the_day_they_joined(tiers):
    """Without joined_at a new member joins at the import, after a last purchase in the
    past (found by an audit)."""
    before = state()

    report = run("MIG-1,ana@example.com,Ana,,,,,,,2026-01-10\n", header=WITH_LAST_PURCHASE)

    assert [str(error) for error in report.errors] == [
        "line 2, joined_at: required with last_purchase_at (else it is now)"
    ]
    assert state() == before


def test_a_known_member_keeps_its_own_last_purchase(tiers, make_member, buy):
    ana = make_member("M-1")
    buy(ana, "10.00", at("2026-03-02"))

    run("M-1,,,,,,,,,2020-01-01\n", header=WITH_LAST_PURCHASE)

    ana.refresh_from_db()
    assert ana.last_purchase_at == at("2026-03-02")
