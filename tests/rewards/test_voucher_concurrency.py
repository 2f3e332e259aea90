"""W5 under concurrency, on PostgreSQL (SQLite runs one writer at a time): a voucher is
used once however many tills try at the same moment, and a use and a cancellation
racing never both succeed."""

import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from points.models import LedgerEntry
from points.services import adjust_points
from rewards.models import Redemption, Reward, VoucherStatus
from rewards.services import cancel_redemption, cancellation, redeem, use_voucher
from tests.conftest import postgres_only, run_together, summary

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

THREADS = 20


@pytest.fixture
def voucher_of(member, staff):
    """A new 5 euro voucher of the member each time it is called."""
    adjust_points(member=member, points=50_000, reason="Welcome", by=staff)
    reward = Reward.objects.create(name="5 euro voucher", points_cost=500, voucher_value=5)

    def voucher_of():
        return redeem(member=member, reward=reward)

    return voucher_of


def test_W5_twenty_concurrent_uses_of_one_code_give_one_success(voucher_of):
    # given
    voucher = voucher_of()

    # when: twenty tills, each with its own receipt
    results = run_together(
        THREADS, lambda i: use_voucher(code=voucher.code, external_id=f"RECEIPT-{i}")
    )

    # then: one used it; the others were told when
    used = [r for r in results if isinstance(r, Redemption)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(used) == 1 and len(refused) == THREADS - 1, results
    assert all("was already used on" in exc.messages[0] for exc in refused)
    voucher.refresh_from_db()
    assert voucher.voucher_status == VoucherStatus.USED
    assert voucher.used_external_id == f"RECEIPT-{results.index(used[0])}"


def test_W4_W5_a_use_and_a_cancellation_racing_never_both_succeed(member, voucher_of, staff):
    # given: five rounds, each a fresh voucher that ten tills use and ten agents cancel
    for round_ in range(5):
        voucher = voucher_of()
        available = summary(member, now=timezone.now())["available"]

        def use_or_cancel(i, voucher=voucher, round_=round_):
            if i % 2:
                return use_voucher(code=voucher.code, external_id=f"R{round_}-USE-{i}")
            return cancel_redemption(redemption=voucher, by=staff, reason="Race")

        # when
        results = run_together(THREADS, use_or_cancel)

        # then: exactly one of the twenty succeeded, and the voucher is what it did
        succeeded = [r for r in results if isinstance(r, Redemption)]
        assert len(succeeded) == 1, results
        assert all(isinstance(r, Redemption | ValidationError) for r in results), results
        voucher.refresh_from_db()
        refunds = LedgerEntry.objects.filter(member=member, kind="refund", pk=voucher.refund_id)
        if voucher.status == Redemption.Status.CANCELLED:
            assert voucher.used_at is None and refunds.count() == 1
            assert summary(member, now=timezone.now())["available"] == available + 500
        else:
            assert voucher.voucher_status == VoucherStatus.USED and voucher.refund_id is None
            assert summary(member, now=timezone.now())["available"] == available
    call_command("check_ledger")


def test_W4_W5_a_use_waits_for_a_cancellation_in_progress_then_is_refused(
    member, voucher_of, staff, monkeypatch
):
    # given: a cancellation that holds the voucher a while (its refund is slow)
    voucher = voucher_of()
    refund = cancellation.post_refund

    def slow_refund(*args, **kwargs):
        entry = refund(*args, **kwargs)
        time.sleep(0.4)
        return entry

    monkeypatch.setattr(cancellation, "post_refund", slow_refund)

    def work(i):
        if i == 0:
            return cancel_redemption(redemption=voucher, by=staff, reason="Race"), 0
        time.sleep(0.1)  # the cancellation holds the voucher by now
        started = time.monotonic()
        try:
            return use_voucher(code=voucher.code, external_id=f"USE-{i}"), None
        except ValidationError as exc:
            return exc, time.monotonic() - started

    # when: ten tills use it meanwhile
    results = run_together(11, work)

    # then: they waited for the cancellation, and were told the voucher is cancelled
    assert isinstance(results[0][0], Redemption)
    for refused, waited in results[1:]:
        assert isinstance(refused, ValidationError), refused
        assert "was cancelled on" in refused.messages[0]
        assert waited > 0.15  # blocked on the row, not refused by a stale read
    voucher.refresh_from_db()
    assert (voucher.status, voucher.used_at) == (Redemption.Status.CANCELLED, None)
    call_command("check_ledger")
