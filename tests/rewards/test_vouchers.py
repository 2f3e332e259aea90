"""W5: every redemption is a voucher, with a code no one can guess, a validity judged on
the programme's calendar, and a use that happens once; W4 as W5 changes it."""

import math
from datetime import UTC, date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from points.models import LedgerEntry
from points.services import adjust_points
from rewards.codes import ALPHABET, LENGTH, LOOK_ALIKES, is_code, new_code, normalized, shown
from rewards.models import Redemption, Reward, VoucherStatus
from rewards.selectors import voucher
from rewards.services import cancel_redemption, redeem, use_voucher
from tests.conftest import ledger_state, local_time, summary

pytestmark = pytest.mark.django_db


REDEEMED = local_time("2026-03-03 14:00")


@pytest.fixture
def rich(member, staff):
    """A Bronze member with 5,000 points available since 1 January 2026."""
    adjust_points(
        member=member, points=5000, reason="Welcome", by=staff, now=local_time("2026-01-01 09:00")
    )
    return member


@pytest.fixture
def five_euro(catalogue):
    return catalogue["5 euro voucher"]


@pytest.fixture
def made(rich, five_euro):
    """A 5 euro voucher redeemed on 3 March 2026 at 14:00 in Madrid."""
    return redeem(member=rich, reward=five_euro, now=REDEEMED)


def state():
    """What a refused use or cancellation must leave as it was."""
    return (
        ledger_state(),
        list(
            Redemption.objects.values_list(
                "status", "used_at", "used_external_id", "used_channel", "used_store"
            ).order_by("pk")
        ),
    )


# Codes


def test_W5_ten_thousand_codes_have_no_duplicates_and_no_look_alike_characters():
    # when
    codes = [new_code() for _ in range(10_000)]

    # then
    assert len(set(codes)) == 10_000
    assert all(len(code) == LENGTH == 16 for code in codes)
    used = set("".join(codes))
    assert used == set(ALPHABET)  # every character drawn, and only those
    assert not used & set(LOOK_ALIKES + "0O1IL")
    # 16 characters of 24: more than 73 bits, unguessable at any rate the API allows
    assert LENGTH * math.log2(len(ALPHABET)) > 73


def test_W5_a_code_is_read_as_people_type_it():
    code = "HK7M2PXC9RTA4WNE"
    assert is_code(code)
    assert shown(code) == "HK7M-2PXC-9RTA-4WNE"
    for typed in ["hk7m-2pxc-9rta-4wne", " HK7M 2PXC 9RTA 4WNE ", "HK7M-2PXC-9RTA-4WNE"]:
        assert normalized(typed) == code
    # pasted from a message or a PDF: other dashes and spaces, a line's end
    for typed in [
        "HK7M\u20132PXC\u20149RTA\u22124WNE",
        "HK7M\u00a02PXC\u20099RTA 4WNE\r\n",
        "\ufeffHK7M\u200b2PXC\u00ad9RTA\u20604WNE",  # invisible: zero width, soft hyphen
    ]:
        assert normalized(typed) == code
    # the dropped half of a look-alike pair is read as the kept one
    assert normalized("HK7M-2PXC-9RTA-4WNE".replace("2", "Z")) == code
    assert not is_code(normalized("HK7M-2PXC-9RTA-4WN"))  # one short
    assert not is_code(normalized("HK7M-2PXC-9RTA-4WN0"))  # a zero is in no code
    assert not is_code(normalized("HK7M-2PXC-9RTA-4WN\x00"))


# Redeeming gives a voucher


def test_W5_a_redemption_is_a_voucher_valid_to_the_end_of_the_90th_day_after(made, five_euro):
    # then: the code, the value of the reward, and 90 days after 3 March: 1 June
    assert is_code(made.code)
    assert made.value == Decimal("5.00")
    assert made.valid_until == date(2026, 6, 1)
    assert made.voucher_status_on(date(2026, 6, 1)) == VoucherStatus.VALID
    assert made.voucher_status_on(date(2026, 6, 2)) == VoucherStatus.EXPIRED
    assert voucher(made.shown_code.lower()) == made


def test_W5_the_day_of_redemption_is_the_day_in_TIME_ZONE(rich, five_euro):
    # given: 00:30 on 4 March in Madrid, still 3 March in UTC
    late = local_time("2026-03-04 00:30")
    assert late.astimezone(UTC).day == 3

    # when
    made = redeem(member=rich, reward=five_euro, now=late)

    # then: counted from 4 March
    assert made.valid_until == date(2026, 6, 2)


def test_W5_the_validity_and_value_are_the_reward_s_when_redeemed(rich, tiers):
    # given
    gift = Reward.objects.create(
        name="Gift card", points_cost=100, voucher_value=Decimal("10.00"), voucher_valid_days=7
    )
    made = redeem(member=rich, reward=gift, now=REDEEMED)

    # when: the marketer changes the reward afterwards
    Reward.objects.filter(pk=gift.pk).update(voucher_value=Decimal("1.00"), voucher_valid_days=1)

    # then: the voucher keeps what it was given
    made.refresh_from_db()
    assert (made.value, made.valid_until) == (Decimal("10.00"), date(2026, 3, 10))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"voucher_valid_days": 0}, "A voucher is valid from 1 to 3,660 days."),
        ({"voucher_valid_days": 10**9}, "A voucher is valid from 1 to 3,660 days."),
        ({"voucher_value": Decimal("0.00")}, "A voucher's value is more than 0, or empty."),
        ({"voucher_value": Decimal("-5.00")}, "A voucher's value is more than 0, or empty."),
    ],
    ids=["zero-days", "a-billion-days", "zero-value", "negative-value"],
)
def test_W5_a_reward_s_voucher_terms_are_checked(tiers, fields, message):
    reward = Reward(name="Odd", points_cost=100, **fields)
    with pytest.raises(ValidationError) as refused:
        reward.full_clean()
    assert message in refused.value.messages


# Using a voucher


def test_W5_use_voucher_marks_it_used_once_and_records_where(made, staff):
    # when
    used = use_voucher(
        code=made.shown_code.lower(),
        external_id="TILL-7-RECEIPT-1",
        by=staff,
        channel="pos",
        store="STORE-07",
        now=local_time("2026-04-10 18:05"),
    )

    # then
    assert used.pk == made.pk and not getattr(used, "skipped", False)
    made.refresh_from_db()
    assert made.voucher_status == VoucherStatus.USED
    assert (made.used_external_id, made.used_channel, made.used_store, made.used_by) == (
        "TILL-7-RECEIPT-1",
        "pos",
        "STORE-07",
        staff,
    )
    assert made.voucher_summary == "Used 10 Apr 2026, STORE-07"


def test_W5_the_same_use_again_returns_the_same_voucher_and_changes_nothing(made):
    first = use_voucher(code=made.code, external_id="U-1", now=local_time("2026-04-10 18:05"))
    before = state()

    again = use_voucher(code=made.code, external_id="U-1", now=local_time("2026-04-11 09:00"))

    assert again.pk == first.pk and again.skipped is True
    assert again.used_at == first.used_at
    assert state() == before


def test_W5_a_used_voucher_is_refused_to_another_use_saying_when(made):
    use_voucher(
        code=made.code, external_id="U-1", store="STORE-07", now=local_time("2026-04-10 18:05")
    )
    before = state()

    with pytest.raises(ValidationError) as refused:
        use_voucher(code=made.code, external_id="U-2", now=local_time("2026-04-11 09:00"))

    assert refused.value.messages == [
        "This 5 euro voucher was already used on 10 Apr 2026 at 18:05 at STORE-07."
    ]
    assert state() == before


def test_W5_a_voucher_can_be_used_to_the_last_minute_of_its_last_day_in_TIME_ZONE(rich, five_euro):
    # given: two vouchers valid until 1 June 2026 (Madrid)
    first = redeem(member=rich, reward=five_euro, now=REDEEMED)
    second = redeem(member=rich, reward=five_euro, now=REDEEMED)

    # when: one at 23:59 on 1 June in Madrid (21:59 UTC), one at 00:00 on 2 June
    use_voucher(code=first.code, external_id="U-1", now=local_time("2026-06-01 23:59"))
    with pytest.raises(ValidationError) as refused:
        use_voucher(code=second.code, external_id="U-2", now=local_time("2026-06-02 00:00"))

    # then
    assert refused.value.messages == [
        "This 5 euro voucher expired: it was valid until the end of 1 Jun 2026."
    ]
    assert Redemption.objects.get(pk=second.pk).used_at is None


def test_W5_a_cancelled_voucher_cannot_be_used(made, staff):
    cancel_redemption(redemption=made, by=staff, now=local_time("2026-03-05 10:00"))
    before = state()

    with pytest.raises(ValidationError) as refused:
        use_voucher(code=made.code, external_id="U-1", now=local_time("2026-03-06 10:00"))

    assert refused.value.messages == [
        "This 5 euro voucher was cancelled on 5 Mar 2026: it cannot be used."
    ]
    assert state() == before


@pytest.mark.parametrize(
    "code, message",
    [
        ("HK7M-2PXC-9RTA-4WNE", "No voucher has the code HK7M-2PXC-9RTA-4WNE."),
        ("M-00001", "This is not a voucher code: a code has 16 letters and digits."),
        ("HK7M\x002PXC", "This is not a voucher code: a code has 16 letters and digits."),
        ("", "This is not a voucher code: a code has 16 letters and digits."),
    ],
    ids=["unknown", "a-customer-code", "nul", "empty"],
)
def test_W5_an_unknown_code_is_refused(made, code, message):
    before = state()

    with pytest.raises(ValidationError) as refused:
        use_voucher(code=code, external_id="U-1")

    assert refused.value.messages == [message]
    assert state() == before


def test_W5_a_use_s_id_given_again_for_another_voucher_is_a_conflict(rich, five_euro):
    first = redeem(member=rich, reward=five_euro, now=REDEEMED)
    second = redeem(member=rich, reward=five_euro, now=REDEEMED)
    use_voucher(code=first.code, external_id="RECEIPT-9", now=REDEEMED)
    before = state()

    with pytest.raises(ValidationError) as refused:
        use_voucher(code=second.code, external_id="RECEIPT-9", now=REDEEMED)

    assert refused.value.error_dict["external_id"][0].code == "conflict"
    assert state() == before
    assert Redemption.objects.get(pk=second.pk).voucher_status_on(date(2026, 3, 3)) == "valid"


@pytest.mark.parametrize("external_id", ["", "   ", None, "x" * 101])
def test_W5_a_use_needs_its_id(made, external_id):
    with pytest.raises(ValidationError) as refused:
        use_voucher(code=made.code, external_id=external_id)
    assert "external_id" in refused.value.error_dict
    assert Redemption.objects.get(pk=made.pk).used_at is None


# W4 as W5 changes it


def test_W4_a_used_voucher_cannot_be_cancelled(made, rich, staff):
    use_voucher(code=made.code, external_id="U-1", now=local_time("2026-04-10 18:05"))
    before = (state(), summary(rich)["available"])

    with pytest.raises(ValidationError) as refused:
        cancel_redemption(redemption=made, by=staff, reason="Wants the points back")

    assert refused.value.messages == [
        f"The 5 euro voucher {made.shown_code} was used on 10 Apr 2026 at 18:05: a used "
        "voucher cannot be cancelled."
    ]
    assert (state(), summary(rich)["available"]) == before


def test_W4_an_unused_voucher_refunds_its_points_even_once_expired(made, rich, staff):
    # given: expired on 1 June, never used
    assert made.voucher_status_on(date(2026, 7, 1)) == VoucherStatus.EXPIRED
    available = summary(rich)["available"]

    # when
    cancelled = cancel_redemption(redemption=made, by=staff, now=local_time("2026-07-01 10:00"))

    # then: the points back, available at once, not tier-counting; the voucher is dead
    assert summary(rich)["available"] == available + 500
    refund = LedgerEntry.objects.get(pk=cancelled.refund_id)
    assert (refund.points, refund.counts_toward_tier) == (500, False)
    assert cancelled.voucher_status == VoucherStatus.CANCELLED
    call_command("check_ledger")


def test_W5_the_database_refuses_a_voucher_both_used_and_cancelled(made):
    use_voucher(code=made.code, external_id="U-1", now=REDEEMED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.filter(pk=made.pk).update(status=Redemption.Status.CANCELLED)


# One status, in Python and in SQL


def test_W5_the_status_of_a_row_and_of_the_admin_s_filter_agree(rich, five_euro, staff):
    # given: one voucher of each status on 10 July 2026
    today = date(2026, 7, 10)
    valid = redeem(member=rich, reward=five_euro, now=local_time("2026-07-01 10:00"))
    expired = redeem(member=rich, reward=five_euro, now=local_time("2026-03-01 10:00"))
    used = redeem(member=rich, reward=five_euro, now=local_time("2026-03-01 10:00"))
    use_voucher(code=used.code, external_id="U-1", now=local_time("2026-03-02 10:00"))
    cancelled = redeem(member=rich, reward=five_euro, now=local_time("2026-03-01 10:00"))
    cancel_redemption(redemption=cancelled, by=staff, now=local_time("2026-03-02 10:00"))
    expected = {
        valid.pk: VoucherStatus.VALID,
        expired.pk: VoucherStatus.EXPIRED,
        used.pk: VoucherStatus.USED,
        cancelled.pk: VoucherStatus.CANCELLED,
    }

    # then
    for redemption in Redemption.objects.all():
        assert redemption.voucher_status_on(today) == expected[redemption.pk]
    for status in VoucherStatus:
        found = Redemption.objects.filter(Redemption.voucher_status_q(status, today))
        assert [r.pk for r in found] == [pk for pk, s in expected.items() if s == status]
