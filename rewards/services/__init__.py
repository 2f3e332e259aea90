"""The rewards' use cases, one module each: redeeming (W3), cancelling (W4), using a
voucher (W5), giving back the units of vouchers that expired unused (W6). The contract's
names are here."""

from rewards.services.cancellation import (
    CANCEL_REASON_LENGTH,
    cancel_redemption,
    refund_reason,
    why_not_cancellable,
)
from rewards.services.redemption import VoucherTerms, check_redeems, redeem
from rewards.services.voucher_expiry import release_expired_vouchers
from rewards.services.vouchers import use_voucher

__all__ = [
    "CANCEL_REASON_LENGTH",
    "VoucherTerms",
    "cancel_redemption",
    "check_redeems",
    "redeem",
    "refund_reason",
    "release_expired_vouchers",
    "use_voucher",
    "why_not_cancellable",
]
