"""A voucher that expires unused (W6): its unit goes back to the reward's stock, for
another member to redeem, since the item was never handed out; its points stay spent
(the member bought the voucher, which was theirs to use until its last day)."""

import logging
from collections import Counter

from django.db import transaction
from django.utils import timezone

from rewards.models import HOLDING_A_UNIT, Redemption, VoucherStatus
from rewards.services.stock import return_units

log = logging.getLogger(__name__)

CHUNK = 1_000  # vouchers a transaction gives back at most


def release_expired_vouchers(*, now=None) -> int:
    """Give back the unit of every voucher whose last day (in TIME_ZONE) has passed
    unused and that still holds the unit it took. Returns how many vouchers gave theirs back.

    Set-based, a chunk at a time, each in its own transaction: the chunk's vouchers are
    locked (SKIP LOCKED: another run takes other rows), marked `unit_returned_at` and
    their units added to each reward in one statement per reward. A voucher marked is
    never taken again, and a cancellation locks the same row and gives the unit back only
    if it is not marked (W4): run twice, late, or at the same time as another run or a
    cancellation, each unit comes back once."""
    now = now or timezone.now()
    held = Redemption.objects.filter(
        HOLDING_A_UNIT, Redemption.voucher_status_q(VoucherStatus.EXPIRED, timezone.localdate(now))
    )
    returned = 0
    while True:
        with transaction.atomic():
            chunk = list(
                held.select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", "reward_id")[:CHUNK]
            )
            if not chunk:
                break
            Redemption.objects.filter(pk__in=[pk for pk, _ in chunk]).update(unit_returned_at=now)
            # In reward order, as every run: two runs never wait for each other's rewards.
            for reward_id, units in sorted(Counter(reward for _, reward in chunk).items()):
                return_units(reward_id, units)
        returned += len(chunk)
    if returned:
        log.info("vouchers: %d expired unused, their units back in stock", returned)
    return returned
