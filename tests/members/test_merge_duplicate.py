"""The duplicate once merged: it is closed, its code names the survivor, it earns
nothing more itself; its purchases, redemptions and requests go on for the
survivor, and erasing the survivor erases it."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Member
from members.selectors import by_code
from members.services import erase_member
from points.models import (
    AdjustmentLimit,
    AdjustmentRequest,
)
from points.services import (
    adjust_points,
    award_action,
    record_purchase,
    record_return,
)
from points.services.goodwill import adjust_or_request, approve_request
from rewards.models import Redemption
from rewards.services import cancel_redemption, redeem
from tests.conftest import (
    at,
    definition,
    give_return,
    ledger_state,
    summary,
)
from tests.members.merging import fresh, merge

pytestmark = pytest.mark.django_db


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
