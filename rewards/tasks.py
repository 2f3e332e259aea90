from celery import shared_task

from core.jobs import RETRY_WHEN_UNAVAILABLE
from rewards.services import release_expired_vouchers


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def release_expired_vouchers_task() -> int:
    """Beat, nightly: the units of the vouchers that expired unused go back to stock (W6).
    Returns how many vouchers gave theirs back."""
    return release_expired_vouchers()
