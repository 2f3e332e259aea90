"""Freezing a member: degradation and expiry skip them until a date (illness,
relocation, a service failure). The jobs read Member.frozen_until in their own SQL
(tiers.selectors.held, points.selectors.points_at_stake); this module sets it."""

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from core.staff_input import check_last_day, clean_reason
from members.models import Member
from members.selectors import check_not_erased, check_open
from points.expiry_selectors import cutoff_instant
from points.services.expiry import refuse_until_expiry_ran, remind_once_committed
from tiers.selectors import frozen_last_day

MAX_FREEZE_DAYS = 366
REASON_LENGTH = Member._meta.get_field("freeze_reason").max_length


def freeze_member(*, member, until: date, reason: str, by, now=None) -> Member:
    """Pause the member's degradation and expiry through the end of `until` (in
    TIME_ZONE): the nightly jobs skip them, an expiry cutoff on a frozen day is skipped
    for them for good (their points wait for the next cutoff after the freeze), and
    their inactivity counts again from the freeze's end. A new freeze replaces a
    running one. Refused between an expiry cutoff and the nightly job that processes
    it, so that points already due cannot escape it."""
    now = now or timezone.now()
    errors = {}
    missing = "Say why the member is frozen (illness, relocation, ...)."
    reason = clean_reason(reason, errors, missing=missing, limit=REASON_LENGTH)
    today = timezone.localdate(now)
    check_last_day(
        until,
        errors,
        earliest=today,
        latest=today + timedelta(days=MAX_FREEZE_DAYS),
        missing="Give the freeze's last day: today or a later date.",
        too_late="A freeze lasts at most a year: freeze again when it ends.",
    )
    _check_staff(by, errors)
    if errors:
        raise ValidationError(errors)
    refuse_until_expiry_ran("freeze", now=now)
    with transaction.atomic():
        member = _locked(member)
        check_not_erased(member, "a freeze")
        member.frozen_until = cutoff_instant(until)
        member.freeze_reason = reason
        member.save(update_fields=["frozen_until", "freeze_reason"])
    return member


def unfreeze_member(*, member, by, now=None, seen_until=None) -> Member:
    """End a running freeze now: the jobs take the member again from tonight, and
    inactivity counts from now. `seen_until`: the end of the freeze the staff user saw;
    a freeze changed since (a colleague's newer one) is not ended unseen."""
    now = now or timezone.now()
    _check_staff(by, errors := {})
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        member = _locked(member)
        if not member.frozen_at(now):
            raise ValidationError(f"{member.external_id} is not frozen.")
        if seen_until is not None and member.frozen_until != seen_until:
            raise ValidationError(
                f"The freeze of {member.external_id} was changed since this page was "
                f"opened: it now runs until {date_format(frozen_last_day(member), 'j M Y')} "
                f"({member.freeze_reason}). Nothing was ended: look at it again first."
            )
        member.frozen_until = now
        member.save(update_fields=["frozen_until"])
        remind_once_committed()  # their points are at stake at the next cutoff again
    return member


def _check_staff(by, errors) -> None:
    if by is None or not by.is_staff:
        errors["__all__"] = "A freeze must name the staff user who sets it."


def _locked(member) -> Member:
    """The member's row, locked as every writer of its points and tier locks it."""
    member = Member.objects.select_for_update(of=("self",)).get(pk=member.pk)
    check_open(member)
    return member
