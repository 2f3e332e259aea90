from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member, Notification, TierChange
from tiers.selectors import Ranking


def enroll_member(*, external_id, email, first_name="", last_name="", joined_at=None) -> Member:
    """Enrol a customer in the entry tier (threshold 0)."""
    entry = Ranking().entry
    member = Member(
        external_id=(external_id or "").strip(),
        email=(email or "").strip(),
        first_name=first_name,
        last_name=last_name,
        joined_at=joined_at or timezone.now(),
        qualified_tier=entry,
        effective_tier=entry,
        best_tier=entry,
    )
    member.full_clean()
    try:
        with transaction.atomic():
            member.save()
            TierChange.objects.create(
                member=member,
                reason=TierChange.Reason.JOINED,
                to_tier=entry,
                qualified_tier=entry,
                changed_at=member.joined_at,
            )
    except IntegrityError as exc:  # a concurrent enrolment of the same code won the race
        raise ValidationError(
            {"external_id": f"A member with customer code {member.external_id} already exists."}
        ) from exc
    return member


def notify(member: Member, kind: str, **context) -> Notification:
    """Queue a message to the member in the outbox; a Celery task sends it."""
    return Notification.objects.create(member=member, kind=kind, context=context)
