"""Merging duplicate accounts (DESIGN.md, "Member 360", Merge): the duplicate's points
move by ledger entries, the survivor is requalified, the duplicate is closed."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from members.models import Member, TierChange
from members.selectors import by_code
from members.services import erase_member, merge_members
from points.models import (
    AdjustmentLimit,
    AdjustmentRequest,
    ExpiryPolicy,
    LedgerEntry,
    PointDefinition,
)
from points.services import (
    adjust_points,
    award_action,
    expire_points,
    merge_preview,
    record_purchase,
    record_return,
)
from points.services.goodwill import adjust_or_request, approve_request
from rewards.models import Redemption
from rewards.services import cancel_redemption, redeem, use_voucher
from tests.conftest import (
    at,
    definition,
    give_return,
    ledger_state,
    postgres_only,
    run_together,
    summary,
)

pytestmark = pytest.mark.django_db


def merge(survivor, duplicate, by, reason="New e-mail address", **kwargs):
    return merge_members(survivor=survivor, duplicate=duplicate, by=by, reason=reason, **kwargs)


def fresh(member) -> Member:
    return Member.objects.get(pk=member.pk)


@pytest.fixture
def pending_purchases():
    """Purchase points become available 30 days after the purchase (P5)."""
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=30)


def test_merge_moves_available_pending_and_lifetime_points_by_merge_entries(
    keep, old, buy, staff, pending_purchases
):
    # given: the old account has spent-down available points and points still pending
    buy(old, "400", when=at("2026-03-02"))  # available by now
    buy(old, "200", when=timezone.now() - timedelta(days=2))  # pending for 28 more days
    adjust_points(member=old, points=-100, reason="Goodwill taken back", by=staff)
    buy(keep, "300", when=at("2026-04-01"))
    now = timezone.now()
    old_entries = list(LedgerEntry.objects.filter(member=old).values_list("pk", "points"))
    before = summary(old, now=now), summary(keep, now=now)

    # when
    survivor = merge(keep, old, staff, now=now)

    # then: the survivor holds the points of both, pending still pending
    after = summary(survivor, now=now)
    assert after["available"] == before[0]["available"] + before[1]["available"] == 600
    assert after["pending"] == before[0]["pending"] + before[1]["pending"] == 200
    assert after["lifetime"] == before[0]["lifetime"] + before[1]["lifetime"] == 900
    # and the duplicate holds none
    closed = summary(old, now=now)
    assert (closed["available"], closed["pending"], closed["lifetime"]) == (0, 0, 0)
    # by "merge" entries out of one and into the other; nothing edited
    merges = LedgerEntry.objects.filter(kind="merge")
    moved_out = merges.filter(member=old).values_list("points", flat=True)
    moved_in = merges.filter(member=keep).values_list("points", flat=True)
    assert moved_out and sorted(-points for points in moved_out) == sorted(moved_in)
    entries = set(LedgerEntry.objects.filter(member=old).values_list("pk", "points"))
    assert set(old_entries) <= entries
    call_command("check_ledger")


def test_pending_points_stay_pending_until_their_date_on_the_survivor(
    keep, old, buy, staff, pending_purchases
):
    # given: 200 points of the old account become available in 28 days
    now = timezone.now()
    buy(old, "200", when=now - timedelta(days=2))

    # when
    merge(keep, old, staff, now=now)

    # then: pending on the survivor until the same moment, then available
    entry = LedgerEntry.objects.get(member=keep, kind="merge")
    assert entry.accrue_at == now - timedelta(days=2) + timedelta(days=30)
    assert summary(keep, now=now + timedelta(days=27))["pending"] == 200
    later = summary(keep, now=now + timedelta(days=29))
    assert (later["available"], later["pending"]) == (200, 0)
    assert summary(old, now=now + timedelta(days=29))["available"] == 0


def test_the_survivor_is_requalified_and_a_tier_neither_reached_pays_its_bonus_once(
    keep, old, buy, staff
):
    # given: two Silver accounts (each got the Silver bonus of 100)
    buy(keep, "1800")
    buy(old, "1500")

    # when: together 3,300 lifetime points
    survivor = merge(keep, old, staff)

    # then: Gold, with the Gold bonus (250) once, and the history says why
    assert survivor.qualified_tier.code == survivor.effective_tier.code == "gold"
    assert summary(survivor)["available"] == 1800 + 100 + 1500 + 100 + 250
    assert LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").count() == 1
    change = TierChange.objects.filter(member=keep).first()
    assert (change.reason, change.to_tier.code, change.created_by) == ("merge", "gold", staff)
    # and the duplicate is back in the entry tier, with no points
    closed = fresh(old)
    assert closed.qualified_tier.code == "bronze" and closed.lifetime_points == 0
    call_command("check_ledger")


def test_the_highest_tier_ever_reached_is_the_higher_of_both_so_no_bonus_for_it(
    keep, old, buy, staff
):
    # given: the old account reached Gold once, then a return took it back to Silver
    purchase = buy(old, "3000")
    give_return(old, purchase, "1500")
    assert fresh(old).qualified_tier.code == "silver" and fresh(old).best_tier.code == "gold"
    buy(keep, "1600")  # Silver

    # when: together Gold again
    survivor = merge(keep, old, staff)

    # then: Gold, but no Gold bonus: the customer had it before
    assert survivor.qualified_tier.code == "gold" and survivor.best_tier.code == "gold"
    assert not LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").exists()


def test_the_survivors_best_tier_rises_to_the_duplicates_even_without_a_tier_change(
    keep, old, buy, staff
):
    # given: the old account reached Gold once and fell back to Bronze
    purchase = buy(old, "3000")
    give_return(old, purchase, "3000")

    # when
    survivor = merge(keep, old, staff)

    # then: still Bronze, but Gold was reached: reaching it again pays no bonus
    assert survivor.qualified_tier.code == "bronze" and survivor.best_tier.code == "gold"


def match(member, code, days, staff, reason="Gold card of a competitor"):
    from tiers.models import Tier
    from tiers.services import grant_status

    until = timezone.localdate() + timedelta(days=days)
    tier = Tier.objects.get(code=code)
    return grant_status(member=member, tier=tier, until=until, reason=reason, by=staff)


def test_a_status_match_of_the_duplicate_goes_on_for_the_survivor_to_its_last_day(keep, old, staff):
    # given: the old account is Gold by status match for 60 days; the kept one Bronze
    grant = match(old, "gold", 60, staff)

    # when
    survivor = merge(keep, old, staff)

    # then: the survivor is Gold by the same match, to the same day, and the history
    # says why; the closed account holds no tier any more
    assert (survivor.effective_tier.code, survivor.qualified_tier.code) == ("gold", "bronze")
    assert survivor.granted_until == grant.until
    from tiers.models import StatusGrant

    carried = StatusGrant.objects.get(member=keep, ended_at=None)
    assert carried.reason == "Carried over from M-OLD (merged): Gold card of a competitor"
    assert StatusGrant.objects.get(pk=grant.pk).end == "merged"
    change = TierChange.objects.filter(member=keep).first()
    assert (change.reason, change.to_tier.code) == ("merge", "gold")
    closed = fresh(old)
    assert (closed.effective_tier.code, closed.granted_tier) == ("bronze", None)
    assert not LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").exists()


def test_the_page_explains_a_survivors_tier_by_the_status_match_it_carries(
    client, login, keep, old, staff
):
    # given a Bronze survivor of a Gold-by-status-match account
    match(old, "gold", 60, staff)
    merge(keep, old, staff)

    # when an agent opens it
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[keep.pk]))

    # then Gold is explained by the match, not as a wait for a purchase
    today = f"{timezone.localdate():%-d %b %Y}"
    assert page.context["tier_explanation"] == (
        f"Gold since {today}: accounts merged by agent: the status match carries on "
        "(qualified for Bronze)"
    )


def test_the_closed_account_s_page_says_its_points_moved_not_that_they_fell(
    client, login, keep, old, buy, staff
):
    """Found by an audit: a Gold account merged away read "Bronze since today: accounts
    merged by agent: lifetime points fell below 1,000", as if the customer had lost them."""
    # given: a Silver duplicate merged into the kept account
    buy(old, 1_000)
    merge(keep, old, staff)

    # when an agent opens the closed account
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[old.pk]))

    # then
    today = f"{timezone.localdate():%-d %b %Y}"
    assert page.context["tier_explanation"] == (
        f"Bronze since {today}: merged into another account by agent, its points moved there"
    )


def test_the_survivor_s_page_names_the_valid_vouchers_left_on_the_merged_account(
    client, login, keep, old, staff, catalogue
):
    """Found by an audit: vouchers stay where they are (M5), and an agent on the page of
    the account the customer uses saw none of them."""
    # given: the old account redeemed two coffees and a 5 euro voucher, one coffee used
    adjust_points(member=old, points=2_000, reason="Welcome", by=staff)
    coffee, five = catalogue["Coffee voucher"], catalogue["5 euro voucher"]
    used = redeem(member=old, reward=coffee)
    use_voucher(code=used.code, external_id="RECEIPT-1")
    redeem(member=old, reward=coffee)
    redeem(member=old, reward=five)
    merge(keep, old, staff)

    # when an agent opens the kept account
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[keep.pk])).content.decode()

    # then: the two valid ones are named, with the account that holds them
    text = " ".join(re.sub("<[^>]+>", "", page).split())
    assert (
        f"Also valid: 2 vouchers of {old.external_id}, merged into this account: use or "
        "cancel them from its page."
    ) in text


def test_a_status_match_is_not_carried_where_the_survivor_has_more(
    keep, old, make_member, buy, staff
):
    # given: the kept account is Platinum by its own match, and the old one Gold by one
    match(keep, "platinum", 30, staff)
    match(old, "gold", 90, staff)

    # when
    survivor = merge(keep, old, staff)

    # then: the survivor keeps its own match; the duplicate's ends
    from tiers.models import StatusGrant

    assert survivor.effective_tier.code == "platinum"
    assert not StatusGrant.objects.filter(member=old, ended_at=None).exists()
    assert survivor.granted_until == timezone.localdate() + timedelta(days=30)

    # and a survivor who qualifies for the tier once merged needs no match
    other, gold_card = make_member("M-OTHER"), make_member("M-GOLDCARD")
    buy(other, "3200")
    match(gold_card, "gold", 60, staff)
    survivor = merge(other, gold_card, staff)
    assert (survivor.effective_tier.code, survivor.granted_tier) == ("gold", None)


def test_the_last_purchase_is_the_later_of_both(keep, old, buy, staff):
    # given
    buy(keep, "10", when=at("2026-02-01"))
    buy(old, "10", when=at("2026-05-01"))

    # when / then
    assert merge(keep, old, staff).last_purchase_at == at("2026-05-01")


def test_the_last_purchase_of_a_survivor_who_never_bought_is_the_duplicates(keep, old, buy, staff):
    buy(old, "10", when=at("2026-05-01"))
    assert merge(keep, old, staff).last_purchase_at == at("2026-05-01")


def test_the_duplicate_earns_redeems_and_is_adjusted_no_more_naming_the_survivor(
    keep, old, buy, staff, catalogue
):
    # given
    purchase = buy(old, "100")
    merge(keep, old, staff)
    before = ledger_state()

    # when / then: every door that addresses the duplicate itself refuses, naming M-KEEP
    attempts = [
        lambda: buy(old, "50"),
        lambda: give_return(old, purchase, "10"),
        lambda: award_action(
            member=old,
            definition=definition("write-a-review"),
            occurred_at=at("2026-03-05"),
            external_id="A-1",
        ),
        lambda: adjust_points(member=old, points=10, reason="Sorry", by=staff),
        lambda: redeem(member=old, reward=catalogue["Coffee voucher"]),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as refused:
            attempt()
        assert "M-OLD was merged into M-KEEP" in str(refused.value)
        assert "use M-KEEP instead" in str(refused.value)
    assert ledger_state() == before


def test_a_purchase_of_the_duplicate_can_be_returned_through_the_survivor(keep, old, buy, staff):
    # given: a purchase on the old account, merged since
    purchase = buy(old, "100")
    merge(keep, old, staff)

    # when: the customer returns part of it
    record_return(
        member=keep,
        amount=Decimal("40"),
        occurred_at=at("2026-03-10"),
        external_id="R-1",
        original_external_id=purchase.external_id,
    )

    # then: the points it earned come back out of the survivor, in proportion
    assert summary(keep)["lifetime"] == 60
    call_command("check_ledger")


def test_a_purchase_recorded_on_the_duplicate_and_sent_again_for_the_survivor_is_skipped(
    keep, old, buy, staff
):
    # given: a till's purchase on the old account, merged since
    purchase = buy(old, "100", external_id="T-77")
    merge(keep, old, staff)

    # when: the till sends it again, now naming the survivor
    again = record_purchase(
        member=keep,
        amount=purchase.amount,
        occurred_at=purchase.occurred_at,
        external_id="T-77",
        channel=purchase.channel,
    )

    # then: the same transaction, skipped (P8)
    assert again.skipped and again.pk == purchase.pk
    assert summary(keep)["lifetime"] == 100


def test_open_redemptions_stay_and_cancelling_one_refunds_the_survivor(keep, old, staff, catalogue):
    # given: the old account redeemed a voucher
    adjust_points(member=old, points=500, reason="Welcome", by=staff)
    redemption = redeem(member=old, reward=catalogue["Coffee voucher"], by=staff)

    # when: merged, then the voucher is cancelled
    merge(keep, old, staff)
    assert Redemption.objects.get(pk=redemption.pk).member_id == old.pk
    cancel_redemption(redemption=redemption, by=staff, reason="Never arrived")

    # then: its points come back to the survivor
    assert summary(keep)["available"] == 500
    assert summary(old)["available"] == 0
    call_command("check_ledger")


def test_a_request_waiting_on_the_duplicate_is_approved_for_the_survivor(
    keep, old, staff, django_user_model
):
    # given: an agent asked 3,000 goodwill points for the old account, above her limit
    AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX agent"), per_adjustment=1000, per_month=5000
    )
    maria = django_user_model.objects.create_user("maria", is_staff=True)
    sam = django_user_model.objects.create_user("sam", is_staff=True)
    maria.groups.add(Group.objects.get(name="CX agent"))
    sam.groups.add(Group.objects.get(name="CX supervisor"))
    request = adjust_or_request(member=old, points=3000, reason="Flight cancelled", by=maria)
    assert isinstance(request, AdjustmentRequest)

    # when: the accounts are merged, then a supervisor approves the request
    merge(keep, old, staff)
    approve_request(request=AdjustmentRequest.objects.get(pk=request.pk), by=sam)

    # then: the customer has the points on the account they keep
    assert AdjustmentRequest.objects.get(pk=request.pk).status == "approved"
    assert summary(keep)["available"] == 3000
    assert summary(old)["available"] == 0
    call_command("check_ledger")


def test_cancelling_a_duplicates_redemption_on_its_page_names_the_survivor_refunded(
    client, login, keep, old, staff, catalogue
):
    # given: the old account redeemed a voucher, then was merged
    adjust_points(member=old, points=600, reason="Welcome", by=staff)
    redemption = redeem(member=old, reward=catalogue["5 euro voucher"], by=staff)
    merge(keep, old, staff)

    # when an agent cancels it on the old account's page
    login("CX agent")
    url = reverse("admin:members_member_cancel_redemption", args=[old.pk, redemption.pk])
    page = client.post(
        url,
        {"reason": "Never arrived", "token": "c0ffee00-0000-4000-8000-000000000001"},
        follow=True,
    )

    # then: the page and the survivor's admin history say where the points went
    assert summary(keep)["available"] == 600
    assert [str(m) for m in page.context["messages"]] == [
        "Cancelled the redemption of 5 euro voucher and refunded 500 points: Never arrived. "
        "M-KEEP now has 600 points available."
    ]
    assert LogEntry.objects.filter(
        object_id=str(keep.pk), change_message__startswith="Cancelled the redemption"
    ).exists()


def test_the_merge_is_in_both_members_admin_history_by_the_staff_user_with_the_reason(
    keep, old, buy, staff
):
    buy(old, "200")

    merge(keep, old, staff, reason="Card lost and re-issued")

    for member, words in ((old, "Merged into M-KEEP"), (keep, "Merged M-OLD into this member")):
        entry = LogEntry.objects.get(object_id=str(member.pk), content_type__model="member")
        assert entry.user == staff
        assert words in entry.change_message and "Card lost and re-issued" in entry.change_message
        assert "200 available" in entry.change_message


def test_the_duplicate_is_closed_and_its_code_names_the_survivor(keep, old, staff):
    merge(keep, old, staff)

    closed = fresh(old)
    assert closed.merged_into == keep and closed.merged_by == staff and closed.merged_at
    assert list(by_code("M-OLD")) == [keep]
    assert list(by_code("M-KEEP")) == [keep]


def test_merging_a_survivor_later_repoints_the_accounts_merged_into_it(
    keep, old, make_member, staff
):
    # given: M-OLD merged into M-KEEP, then M-KEEP into M-NEWEST
    newest = make_member("M-NEWEST")
    merge(keep, old, staff)

    # when
    merge(newest, keep, staff)

    # then: both old codes name the newest account
    assert fresh(old).merged_into == newest and fresh(keep).merged_into == newest
    assert list(by_code("M-OLD")) == list(by_code("M-KEEP")) == [newest]


# Refusals


@pytest.mark.parametrize(
    "case, message",
    [
        ("itself", "cannot be merged into itself"),
        ("into a closed member", "M-KEEP is closed (merged into M-THIRD): merge into M-THIRD"),
        ("into an erased member", "was erased: nothing can be merged into an erased member"),
        ("twice", "M-OLD was already merged into M-KEEP"),
    ],
)
def test_refused_merges_name_why_and_write_nothing(case, message, keep, old, make_member, staff):
    # given
    survivor, duplicate = keep, old
    if case == "itself":
        duplicate = keep
    elif case == "into a closed member":
        merge(make_member("M-THIRD"), keep, staff)
    elif case == "into an erased member":
        erase_member(member=keep, by=staff)
    elif case == "twice":
        merge(keep, old, staff)
        survivor = make_member("M-OTHER")
    before = ledger_state(), list(Member.objects.values_list("merged_into", flat=True))

    # when / then
    with pytest.raises(ValidationError) as refused:
        merge(survivor, duplicate, staff)
    assert message in str(refused.value)
    assert (ledger_state(), list(Member.objects.values_list("merged_into", flat=True))) == before


def test_an_erased_duplicate_can_be_merged(keep, old, staff):
    erase_member(member=old, by=staff)
    assert merge(keep, old, staff).pk == keep.pk


def test_a_merge_needs_a_staff_user_and_a_reason(keep, old, django_user_model):
    customer = django_user_model.objects.create_user("customer")
    with pytest.raises(ValidationError, match="must name the staff user"):
        merge(keep, old, customer)
    with pytest.raises(ValidationError, match="Say why the accounts are merged"):
        merge(keep, old, django_user_model.objects.create_user("agent2", is_staff=True), reason=" ")
    with pytest.raises(ValidationError, match="Say why the accounts are merged"):
        merge(keep, old, django_user_model.objects.get(username="agent2"), reason="\u200b\ufeff")
    assert not fresh(old).is_merged


def test_a_merge_waits_for_the_expiry_of_a_passed_cutoff(keep, old, staff):
    # given: quarterly expiry, the cutoff of 31 March passed but not yet processed
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "quarterly", date(2026, 3, 1)
    policy.save()
    now = at("2026-04-01", hour=0) + timedelta(minutes=2)

    # when / then
    with pytest.raises(ValidationError, match="The points expiry of 31 Mar 2026 has not run yet"):
        merge(keep, old, staff, now=now)

    # and once the job has run, the merge goes through
    expire_points(now=now)
    assert merge(keep, old, staff, now=now + timedelta(minutes=5)).pk == keep.pk


# What the confirmation page reads


def test_the_preview_shows_the_result_the_merge_gives_and_writes_nothing(keep, old, buy, staff):
    # given
    buy(keep, "1800")
    buy(old, "1500")
    before = ledger_state()

    # when
    preview = merge_preview(survivor=keep, duplicate=old)

    # then: nothing written, and the figures are those of the merge
    assert ledger_state() == before
    merged = summary(merge(keep, old, staff))
    after = preview["after"]
    assert (after["available"], after["pending"], after["lifetime"]) == (
        merged["available"],
        merged["pending"],
        merged["lifetime"],
    )
    assert after["qualified_tier"].code == "gold" and preview["bonus"] == 250
    assert preview["moved"] == {"available": 1600, "pending": 0, "lifetime": 1500}


# At the same time (PostgreSQL)


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_purchase_racing_a_merge_lands_on_one_account_and_the_ledger_agrees(keep, old, staff):
    # given
    record_purchase(
        member=old, amount=Decimal("100"), occurred_at=at("2026-03-01"), external_id="T-0"
    )

    # when: purchases on the old account race its merge (unlocked purchases included)
    def work(i):
        if i == 0:
            return merge(keep, old, staff)
        return record_purchase(
            member=old, amount=Decimal("10"), occurred_at=at("2026-03-02"), external_id=f"T-{i}"
        )

    results = run_together(6, work)

    # then: each purchase was recorded before the merge (and moved) or refused
    assert not isinstance(results[0], Exception), results[0]
    refused = [r for r in results[1:] if isinstance(r, ValidationError)]
    assert all("was merged into M-KEEP" in str(r) for r in refused)
    assert not [r for r in results[1:] if isinstance(r, Exception) and r not in refused]
    recorded = 5 - len(refused)
    assert summary(keep)["lifetime"] == 100 + 10 * recorded
    assert summary(old)["lifetime"] == 0
    call_command("check_ledger")


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_duplicate_merged_into_two_members_at_once_goes_to_one(keep, old, make_member, staff):
    # given
    other = make_member("M-OTHER")
    adjust_points(member=old, points=300, reason="Welcome", by=staff)

    # when
    results = run_together(2, lambda i: merge([keep, other][i], old, staff))

    # then: one merge, one refusal; the points are in one place
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "already merged" in str(errors[0])
    assert summary(keep)["available"] + summary(other)["available"] == 300
    call_command("check_ledger")


def test_erasing_a_survivor_erases_the_accounts_merged_into_it(keep, old, staff):
    # given: the customer's old account, merged into the one they keep
    merge(keep, old, staff)

    # when: the customer asks to be forgotten
    erase_member(member=keep, by=staff)

    # then: neither account keeps their code, e-mail or names; the points stay
    for member in (fresh(keep), fresh(old)):
        assert member.erased_at and member.external_id.startswith("ERASED-")
        assert member.email.endswith("@erased.invalid")
    assert not Member.objects.filter(external_id__in=["M-KEEP", "M-OLD"]).exists()
    call_command("check_ledger")


def test_a_merge_drops_the_duplicates_unsent_expiry_reminders(keep, old, staff):
    # given: an expiry reminder waiting for the old account's points
    from members.models import Notification

    Notification.objects.create(member=old, kind="expiry_reminder", cutoff=date(2026, 12, 31))

    # when
    merge(keep, old, staff)

    # then: no message about points that are no longer there
    assert not Notification.objects.filter(member=old, kind="expiry_reminder").exists()
