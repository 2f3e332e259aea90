"""E2 with P4: a return recorded after an expiry cutoff it is dated before leaves the
member where a return recorded on time would have (docs/rules.md, "A return recorded
late"): the expiry gives back what it took of the points the return takes back."""

from datetime import date

import pytest
from django.core.management import call_command

from members.services import merge_members
from points.models import ExpiryRun, LedgerEntry, PointDefinition
from points.services import adjust_points, expire_points
from tests.conftest import at, give_return, summary

pytestmark = pytest.mark.django_db

JAN, FEB = date(2026, 1, 31), date(2026, 2, 28)


def net_expired(member) -> dict:
    """What each cutoff took of the member in the end, net of what it gave back."""
    net = {}
    for cutoff, points in LedgerEntry.objects.filter(member=member, kind="expiry").values_list(
        "cutoff", "points"
    ):
        net[cutoff] = net.get(cutoff, 0) + points
    return {cutoff: points for cutoff, points in net.items() if points}


def given_back(member) -> list:
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry", points__gt=0)
        .order_by("cutoff")
        .values_list("cutoff", "points", "transaction__external_id")
    )


@pytest.mark.parametrize("recorded", ["on time", "late"])
def test_a_return_recorded_after_the_cutoff_it_is_dated_before_takes_the_points_once(
    member, buy, monthly, recorded
):
    # given 100 bought on 5 Jan, returned in full on 20 Jan
    bought = buy(member, "100", when=at("2026-01-05"))
    if recorded == "on time":
        give_return(member, bought, "100", when=at("2026-01-20"), external_id="R-1")
    # when the 31 Jan cutoff runs, and the return is recorded before or after it
    expire_points(now=at("2026-02-01", 1))
    if recorded == "late":
        give_return(member, bought, "100", when=at("2026-01-20"), external_id="R-1")

    # then the member ends where a return on time leaves them: nothing, not -100
    assert summary(member)["available"] == 0
    assert summary(member)["lifetime"] == 0
    assert net_expired(member) == {}
    if recorded == "late":  # the 100 expired, then given back by the return's entry
        assert given_back(member) == [(JAN, 100, "R-1")]
    call_command("check_ledger")


@pytest.mark.parametrize("recorded", ["on time", "late"])
def test_what_a_cutoff_could_not_give_back_counts_at_the_next_one(
    member, buy, staff, monthly, recorded
):
    # given 100 bought on 5 Jan, 60 spent on 10 Jan, 100 bought on 5 Feb
    bought = buy(member, "100", when=at("2026-01-05"))
    adjust_points(member=member, points=-60, reason="spent", by=staff, now=at("2026-01-10"))
    buy(member, "100", when=at("2026-02-05"))
    # and the January purchase returned in full on 20 Jan, recorded on time or after
    # both cutoffs ran (40 expired at 31 Jan, 100 at 28 Feb)
    if recorded == "on time":
        give_return(member, bought, "100", when=at("2026-01-20"), external_id="R-1")
    expire_points(now=at("2026-03-01", 1))
    if recorded == "late":
        give_return(member, bought, "100", when=at("2026-01-20"), external_id="R-1")

    # then the same end: on time, -60 at 31 Jan (nothing expires) and 40 at 28 Feb
    assert net_expired(member) == {FEB: -40}
    assert summary(member)["available"] == 0
    if recorded == "late":
        assert given_back(member) == [(JAN, 40, "R-1"), (FEB, 60, "R-1")]
    call_command("check_ledger")


@pytest.mark.parametrize("recorded", ["one by one", "in one file"])
def test_two_late_returns_never_get_the_same_expired_points_back(
    make_member, buy, staff, monthly, recorded, tmp_path
):
    # given two purchases of 100 on 5 Jan, 100 spent: the 31 Jan cutoff expired 100
    member = make_member("M-TWO")
    first = buy(member, "100", when=at("2026-01-05"), external_id="P-A")
    second = buy(member, "100", when=at("2026-01-05"), external_id="P-B")
    adjust_points(member=member, points=-100, reason="spent", by=staff, now=at("2026-01-10"))
    expire_points(now=at("2026-02-01", 1))

    # when both are returned in full, dated 20 Jan, recorded after the cutoff ran
    if recorded == "one by one":
        give_return(member, first, "100", when=at("2026-01-20"), external_id="R-A")
        give_return(member, second, "100", when=at("2026-01-20"), external_id="R-B")
    else:
        csv = tmp_path / "returns.csv"
        csv.write_text(
            "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
            "R-A,M-TWO,return,100.00,2026-01-20,,,P-A\n"
            "R-B,M-TWO,return,100.00,2026-01-20,,,P-B\n"
        )
        call_command("import_transactions", str(csv))

    # then the 100 expired come back once: on time, 200 - 100 - 200 leaves -100
    assert summary(member)["available"] == -100
    assert given_back(member) == [(JAN, 100, "R-A")]
    assert net_expired(member) == {}
    call_command("check_ledger")


def test_a_return_of_points_still_pending_at_the_cutoff_gives_nothing_back_there(
    member, buy, staff, monthly
):
    # given 50 given by hand, and 100 bought on 20 Jan that accrue 30 days later
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=30)
    adjust_points(member=member, points=50, reason="welcome", by=staff, now=at("2026-01-02"))
    bought = buy(member, "100", when=at("2026-01-20"))
    expire_points(now=at("2026-02-01", 1))  # takes the 50: the 100 are pending

    # when the purchase is returned, dated 25 Jan, after the cutoff ran
    give_return(member, bought, "100", when=at("2026-01-25"))

    # then nothing comes back: on time, the return too counted only once accrued
    assert given_back(member) == []
    assert net_expired(member) == {JAN: -50}
    call_command("check_ledger")


def test_the_expiry_job_run_again_after_a_late_return_takes_nothing_more(member, buy, monthly):
    bought = buy(member, "100", when=at("2026-01-05"))
    expire_points(now=at("2026-02-01", 1))
    give_return(member, bought, "100", when=at("2026-01-20"))

    assert expire_points(now=at("2026-02-01", 2)) == 0
    ExpiryRun.objects.filter(cutoff=JAN).delete()  # as if the run had not finished
    assert expire_points(now=at("2026-02-01", 3)) == 0

    assert summary(member)["available"] == 0
    assert ExpiryRun.objects.get(cutoff=JAN).points == 100  # what the job itself expired
    call_command("check_ledger")


def test_a_late_return_of_a_merged_accounts_purchase_takes_nothing_from_the_survivors_expiry(
    keep, old, buy, staff, monthly
):
    # given the survivor's own 100 expired at 31 Jan, and nothing left on the duplicate
    adjust_points(member=keep, points=100, reason="welcome", by=staff, now=at("2026-01-02"))
    bought = buy(old, "100", when=at("2026-01-05"))
    expire_points(now=at("2026-02-01", 1))
    merge_members(
        survivor=keep, duplicate=old, by=staff, reason="same customer", now=at("2026-02-02")
    )

    # when the duplicate's purchase is returned, dated 20 Jan, through the survivor
    give_return(keep, bought, "100", when=at("2026-01-20"))

    # then the survivor's expiry, which took none of that purchase's points, gives nothing
    assert given_back(keep) == [] and given_back(old) == []
    assert summary(keep)["available"] == -100
    call_command("check_ledger")


@pytest.mark.parametrize("door", ["one by one", "in one file"])
def test_a_late_purchase_returned_late_gives_nothing_back(
    make_member, buy, monthly, door, tmp_path
):
    # given 100 bought on 5 Jan and expired at the 31 Jan cutoff
    member = make_member("M-LATE")
    buy(member, "100", when=at("2026-01-05"))
    expire_points(now=at("2026-02-01", 1))

    # when a purchase of 10 Jan and its return of 15 Jan are both recorded after the run
    if door == "one by one":
        late = buy(member, "50", when=at("2026-01-10"), now=at("2026-02-02"), external_id="P-L")
        give_return(member, late, "50", when=at("2026-01-15"), external_id="R-L")
    else:
        csv = tmp_path / "late.csv"
        csv.write_text(
            "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
            "P-L,M-LATE,purchase,50.00,2026-01-10,,,\n"
            "R-L,M-LATE,return,50.00,2026-01-15,,,P-L\n"
        )
        call_command("import_transactions", str(csv))

    # then the cutoff, which never saw that purchase, gives nothing back: they cancel out
    assert given_back(member) == []
    assert summary(member)["available"] == 0
    call_command("check_ledger")


@pytest.mark.parametrize("recorded", ["on time", "late"])
def test_a_purchase_merged_in_before_the_cutoff_is_given_back_by_the_survivors_expiry(
    keep, old, buy, staff, monthly, recorded
):
    # given the duplicate's purchase of 5 Jan, merged into the account kept on 10 Jan
    bought = buy(old, "100", when=at("2026-01-05"))
    merge_members(survivor=keep, duplicate=old, by=staff, reason="same", now=at("2026-01-10"))
    # and returned on 20 Jan, recorded before or after the 31 Jan cutoff, which took the
    # merged 100 from the account kept
    if recorded == "on time":
        give_return(keep, bought, "100", when=at("2026-01-20"), external_id="R-M")
    expire_points(now=at("2026-02-01", 1))
    if recorded == "late":
        give_return(keep, bought, "100", when=at("2026-01-20"), external_id="R-M")

    # then the same end
    assert summary(keep)["available"] == 0
    call_command("check_ledger")


def test_a_purchase_of_an_account_merged_twice_gives_nothing_back(make_member, buy, staff, monthly):
    # given A's purchase, A merged into B, B into C (whose points reached C at a merge
    # the purchase does not tell), and the 31 Jan cutoff run
    a, b, c = make_member("M-A"), make_member("M-B"), make_member("M-C")
    bought = buy(a, "100", when=at("2026-01-05"))
    merge_members(survivor=b, duplicate=a, by=staff, reason="same", now=at("2026-01-06"))
    merge_members(survivor=c, duplicate=b, by=staff, reason="same", now=at("2026-01-07"))
    expire_points(now=at("2026-02-01", 1))

    # when the purchase is returned through C, dated 20 Jan
    give_return(c, bought, "100", when=at("2026-01-20"))

    # then nothing is given back (safe side: which cutoffs found it is not known)
    assert given_back(c) == []
    call_command("check_ledger")
