from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
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


def send_pending_notifications(*, limit: int = 500) -> int:
    """Send a batch of outbox messages by e-mail and mark them sent.

    Workers running at once take different rows (SKIP LOCKED). A batch whose sending
    fails stays unsent and is retried on the next run: at least once, never lost.
    """
    with transaction.atomic():
        batch = list(
            Notification.objects.filter(sent_at=None)
            .select_related(
                "member",
                "tier_change__from_tier",
                "tier_change__to_tier",
                "tier_change__qualified_tier",
            )
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")[:limit]
        )
        if not batch:
            return 0
        get_connection().send_messages([_message(n) for n in batch])
        Notification.objects.filter(pk__in=[n.pk for n in batch]).update(sent_at=timezone.now())
    return len(batch)


def _message(notification: Notification) -> EmailMessage:
    """The e-mail of a notification: templates/notifications/<kind>.txt, whose first
    line is the subject."""
    text = render_to_string(
        f"notifications/{notification.kind}.txt",
        {
            "member": notification.member,
            "change": notification.tier_change,
            "points": notification.points,
            "cutoff": notification.cutoff,
            **notification.context,
        },
    ).strip()
    subject, _, body = text.partition("\n")
    return EmailMessage(
        subject=subject.strip(), body=body.strip() + "\n", to=[notification.member.email]
    )
