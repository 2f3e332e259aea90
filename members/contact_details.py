"""A member's contact details corrected by staff on the member page (names, e-mail,
phone, birth date). A birth date on file is corrected only by those allowed: a birthday
campaign multiplies what a member earns in that month (P3)."""

from django.core.exceptions import ValidationError

from members.models import Member

CORRECT_BIRTH_DATE = "members.correct_birth_date"


def may_change_birth_date(member: Member, user) -> bool:
    """Whether `user` may set this member's birth date: any who may change members while
    none is on file, those with "Can correct a member's birth date" always."""
    return not member.birth_date or user.has_perm(CORRECT_BIRTH_DATE)


def change_contact_details(*, member: Member, changes: dict, by) -> None:
    """Write `changes` (field: value), the details `by` changed on the page: only those,
    since the row read for the form is not locked and its balances and tiers may have
    moved since (the ledger's caches). A birth date given meanwhile by another stays, as
    the erasure of a member erased meanwhile does: refused, nothing written."""
    rows = Member.objects.filter(pk=member.pk, erased_at=None)
    if "birth_date" in changes and not by.has_perm(CORRECT_BIRTH_DATE):
        rows = rows.filter(birth_date=None)  # given meanwhile: a supervisor's to correct now
    if not changes or rows.update(**changes):
        return
    if Member.objects.filter(pk=member.pk, erased_at=None).exists():
        raise ValidationError(
            f"{member} was given a birth date meanwhile: a CX supervisor corrects it. "
            "Nothing was saved."
        )
    raise ValidationError(f"{member} was erased meanwhile: nothing was saved.")
