"""Using a voucher (W5): once, at a till, a web shop or the desk, while it is valid."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.ids import canonical_id, readable_id
from core.refusals import CONFLICT
from points.models import Channel
from rewards.codes import is_code, normalized, shown
from rewards.models import Redemption, VoucherStatus

NOT_A_CODE = "This is not a voucher code: a code has 16 letters and digits."
EXTERNAL_ID_LENGTH = Redemption._meta.get_field("used_external_id").max_length


def use_voucher(
    *, code, external_id, by=None, channel=Channel.API, store="", now=None
) -> Redemption:
    """Mark the voucher of `code` used, once.

    One conditional UPDATE (valid, unused, not cancelled, not expired) both checks and
    marks it, so of any number of tills using one code at once exactly one succeeds;
    `cancel_redemption` locks the same row, so a use and a cancellation never both do.
    The use keeps `external_id` (the till's id for it): the same id again returns the
    same redemption, marked skipped; another id is refused ("already used on ..."), as
    are an expired, cancelled or unknown code, in words a till operator understands.

    Expiry is judged on the date in the programme's time zone (TIME_ZONE): a voucher
    valid until 1 June can be used to the last instant of 1 June there."""
    code, external_id = normalized(code), _clean(external_id)
    if not is_code(code):  # nothing to look up (and no NUL for the database)
        raise ValidationError(NOT_A_CODE, code="unknown")
    with transaction.atomic():
        now = now or timezone.now()
        today = timezone.localdate(now)
        try:
            with transaction.atomic():  # the id may be another voucher's use: a savepoint
                marked = (
                    Redemption.objects.filter(code=code)
                    .filter(Redemption.voucher_status_q(VoucherStatus.VALID, today))
                    .update(
                        used_at=now,
                        used_by=by,
                        used_external_id=external_id,
                        used_channel=channel,
                        used_store=store,
                    )
                )
        except IntegrityError:
            marked = 0
        voucher = Redemption.objects.select_related("member").filter(code=code).first()
        if not marked:
            _refuse_or_repeat(voucher, code=code, external_id=external_id, by=by, today=today)
        return voucher


def _refuse_or_repeat(voucher, *, code, external_id, by, today) -> None:
    """Why the voucher was not marked used, read after the update waited for whoever
    held it: an exact repeat (the same id from the same sender: marked skipped, not an
    error), or a ValidationError."""
    if voucher is None:
        raise ValidationError(f"No voucher has the code {shown(code)}.", code="unknown")
    if voucher.used_external_id == external_id:
        if voucher.used_by_id != (by.pk if by else None):
            message = f"{external_id} was already used for this voucher by another key or user."
            raise ValidationError({"external_id": ValidationError(message, code=CONFLICT)})
        voucher.skipped = True
        return
    if Redemption.objects.filter(used_external_id=external_id).exists():
        message = f"{external_id} was already used for another voucher."
        raise ValidationError({"external_id": ValidationError(message, code=CONFLICT)})
    status = voucher.voucher_status_on(today)
    name = f"This {voucher.voucher_name}"
    if status == VoucherStatus.CANCELLED:
        when = timezone.localtime(voucher.cancelled_at)
        raise ValidationError(f"{name} was cancelled on {when:%-d %b %Y}: it cannot be used.")
    if status == VoucherStatus.USED:
        when = timezone.localtime(voucher.used_at)
        where = f" at {voucher.used_where}" if voucher.used_where else ""
        raise ValidationError(
            f"{name} was already used on {when:%-d %b %Y at %H:%M}{where}.", code="used"
        )
    if status == VoucherStatus.EXPIRED:
        raise ValidationError(
            f"{name} expired: it was valid until the end of {voucher.valid_until:%-d %b %Y}."
        )
    # Valid and unused, yet not marked: only if the row changed between the update and
    # this read, which a use or cancellation of it (both final) cannot undo.
    raise ValidationError(f"{name} could not be used just now: try again.")


def _clean(external_id) -> str:
    external_id = canonical_id(str(external_id or "").strip())  # core.ids
    if not external_id:
        message = "Give the id of this use (the till's receipt or order id)."
        raise ValidationError({"external_id": message})
    if len(external_id) > EXTERNAL_ID_LENGTH:
        message = f"At most {EXTERNAL_ID_LENGTH} characters."
        raise ValidationError({"external_id": message})
    readable_id(external_id, field="external_id")
    return external_id
