import copy
import functools
import logging
import re
import smtplib
import uuid
from datetime import date

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import MaxLengthValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core import events
from core.ids import canonical_id, renamer
from core.refusals import UNKNOWN
from members.models import Member, Notification, TierChange
from members.outdated_messages import match_ended_with, outdated
from members.selectors import by_code, code_digest
from members.signals import member_codes_erased, member_erased

logger = logging.getLogger(__name__)

# What a member is enrolled with, each field checked on its own by the model (its type,
# length, validators): enroll_member through full_clean, the members import through
# enrolment_errors, a row at a time without a model object.
ENROLMENT_FIELDS = ("external_id", "email", "first_name", "last_name", "phone", "birth_date")


def enroll_member(
    *,
    external_id,
    email,
    first_name="",
    last_name="",
    joined_at=None,
    phone="",
    birth_date=None,
    referred_by=None,
    by=None,
) -> Member:
    """Enrol a customer in the entry tier (threshold 0), with the programme's welcome
    points if it gives any. `referred_by`: the customer code of the member who referred
    them, paid at this member's first purchase. `by`: who enrolled them (a staff user,
    an API key's account), on the tier history and the welcome points."""
    entry = Member.entry_tier()
    external_id = canonical_id((external_id or "").strip())
    member = Member(
        external_id=external_id,
        email=(email or "").strip(),
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        birth_date=birth_date,
        joined_at=joined_at or timezone.now(),
        qualified_tier=entry,
        effective_tier=entry,
        best_tier=entry,
        referred_by=referrer(referred_by, member_code=external_id),
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
                created_by=by,
            )
            events.record(
                events.EventType.MEMBER_ENROLLED, member_id=member.pk, subject_id=member.pk
            )
            # Welcome points are ledger entries, a rule of points above this app:
            # imported when called, as merge_members does (pyproject's contract).
            from points.services.referrals import award_welcome

            member = award_welcome(member, by=by)  # with its welcome points, and tier
    except IntegrityError as exc:  # a concurrent enrolment of the same code won the race
        raise ValidationError(
            {"external_id": f"A member with customer code {member.external_id} already exists."}
        ) from exc
    return member


def referrer(code, *, member_code: str) -> Member | None:
    """The member a referral code names (a merged code: its survivor), or why it names
    none. A member cannot refer themselves. Both codes are read as ids are (core.ids)."""
    code = canonical_id((code or "").strip())
    if not code:
        return None
    if code == canonical_id(member_code):
        raise ValidationError({"referred_by": "A member cannot refer themselves."})
    found = by_code(code).first()
    if found is None:
        # "unknown": the API answers 404 naming the field, as for any member it names
        unknown = ValidationError(f"No member with customer code {code}.", code=UNKNOWN)
        raise ValidationError({"referred_by": unknown})
    if found.erased_at:
        raise ValidationError({"referred_by": f"{code} was erased: it cannot refer anyone."})
    return found


def enrolment_errors(**values) -> dict[str, str]:
    """What enroll_member's full_clean says of each of these fields (ENROLMENT_FIELDS),
    uniqueness apart: the model's own checks (blank, null, length, validators), made
    without a model object, for an importer that checks a million rows. An empty dict
    when all are good."""
    errors = {}
    for name, value in values.items():
        field, max_length, validators = _field_checks(name)
        try:
            if value is None or value == "":
                if not (field.null if value is None else field.blank):
                    field.clean(value, None)  # raises the model's own message
            elif max_length is not None and len(value) > max_length:
                field.clean(value, None)
            else:
                for validate in validators:
                    validate(value)
        except ValidationError as exc:
            errors[name] = " ".join(exc.messages).rstrip(".")
    return errors


@functools.cache
def _field_checks(name: str):
    """A member field, its maximum length and its validators but the length's:
    Field.clean's checks of a value that is not empty, split so that the common case
    costs a comparison and the field's own validators (an e-mail address, a birth date
    in the past), not a call per step."""
    field = Member._meta.get_field(name)
    others = [v for v in field.validators if not isinstance(v, MaxLengthValidator)]
    return field, field.max_length, others


def erase_member(*, member, by) -> Member:
    """Right to be forgotten: replace the member's personal data for good.

    Customer code, e-mail, names and phone give way to an opaque token; balances, tier,
    ledger and tier history stay as they are, so totals and `check_ledger` still agree.
    Unsent messages are dropped (their address is gone), and the admin's history stops
    naming the member. The customer's accounts merged into this one (closed, with their
    own code, e-mail and names) are erased with it; what their merges wrote names each
    erased account by its new code, in every account merged with it (_forget_codes),
    also when a closed account is erased on its own (and the freeze its merge carried
    over loses its reason there: _forget_carried_freeze); the point requests waiting for
    them are rejected (members.signals.member_codes_erased, which the apps above
    receive). The endpoints that want it hear each code to forget (_report_erased).
    Irreversible; the staff user is recorded."""
    if by is None:
        raise ValidationError("An erasure must name the staff user who makes it.")
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.erased_at:
            raise ValidationError(f"{member.external_id} was already erased.")
        merged = Member.objects.select_for_update().filter(merged_into=member, erased_at=None)
        accounts = [member, *merged.order_by("pk")]
        former = {account.pk: account.external_id for account in accounts}
        reasons = {account.freeze_reason for account in accounts} - {""}
        codes = {account.external_id: _erase(account, by) for account in accounts}
        _forget_carried_freeze(member, reasons)
        _report_erased(accounts, former=former)
        transaction.on_commit(lambda: member_erased.send(Member, codes=sorted(codes)))
        _forget_codes(codes, accounts=merge_family(member))
    return member


def _report_erased(accounts: list[Member], *, former: dict[int, str]) -> None:
    """One member.erased per erased account, for the CRM to forget each code it knows:
    the code before the erasure (`former`: id: code) and that of the account it was
    merged into (the one erased with it, or, for an old account erased on its own, the
    one the customer keeps), kept on the deliveries: the rows no longer hold them."""
    if not events.wanted(events.EventType.MEMBER_ERASED):
        return
    into = {a.merged_into_id for a in accounts} - set(former) - {None}
    codes = dict(Member.objects.filter(pk__in=into).values_list("pk", "external_id")) | former
    events.record_many(
        events.EventType.MEMBER_ERASED,
        [(account.pk, account.pk) for account in accounts],
        data={
            account.pk: {
                "member": former[account.pk],
                "merged_into": codes.get(account.merged_into_id),
                "erased_at": account.erased_at.isoformat(),
            }
            for account in accounts
        },
    )


def _forget_carried_freeze(member: Member, reasons: set[str]) -> None:
    """A closed account erased on its own: the freeze its merge carried over (with its
    reason, as written: points.services.merging) to the account the customer keeps, and
    to one between (M-OLD into M-MID, then M-MID into M-KEEP), goes on there, without
    its reason."""
    if member.merged_into_id and reasons:
        Member.objects.filter(
            pk__in=merge_family(member), erased_at=None, freeze_reason__in=reasons
        ).update(freeze_reason=ERASED_REASON)


def merge_family(member: Member) -> list[int]:
    """The ids of the accounts merged with `member`: the account the customer uses now
    (`merged_into` names it, M7), and every account merged into that one, directly or
    through another. The texts a merge writes about an account are theirs."""
    kept = member.merged_into_id or member.pk
    return [kept, *Member.objects.filter(merged_into=kept).values_list("pk", flat=True)]


def _forget_codes(codes: dict[str, str], *, accounts: list[int]) -> None:
    """Rename the erased customer codes (old: new) in what the programme wrote about
    these `accounts` when they were merged, which names them by code: their admin
    history ("Merged M-OLD into this member") here, and what the apps above wrote
    (members.signals.member_codes_erased: a status match carried over by a merge).
    The customer's freezes in that history lose their reasons (without_freeze_reasons).
    The ledger is never edited (P7): its merge lines keep the codes (rules.md, Erasing
    a member)."""
    renamed = renamer(codes)
    history = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Member),
        object_id__in=[str(pk) for pk in accounts],
    ).values_list("pk", "change_message")
    for pk, message in history:
        if (new := without_freeze_reasons(renamed(message))) != message:
            LogEntry.objects.filter(pk=pk).update(change_message=new)
    member_codes_erased.send(Member, codes=codes, accounts=accounts)


# A freeze is noted in the admin history with its reason, typed by staff ("Hospital
# stay": often health), which an erasure removes there as on the member row: the notes
# are written by these two functions, and found again by _FREEZE_REASON, alone.
ERASED_REASON = "Erased with the member's personal data"
ERASED_TEXT = "Sent. Its text was erased with the member's personal data."


def freeze_noted(last_day: date, reason: str) -> str:
    """A freeze set on the member page: "Frozen until 4 Jan 2027: Hospital stay"."""
    return f"Frozen until {date_format(last_day, 'j M Y')}: {reason}"


def carried_freeze_noted(code: str, last_day: date, reason: str) -> str:
    """A merged account's freeze that goes on for the account kept."""
    return f"{code}'s freeze until {date_format(last_day, 'j M Y')} ({reason}) goes on here"


# What comes before a freeze's reason in a note, and what after.
_FREEZE_REASON = re.compile(
    r"(^Frozen until [^:]*: |'s freeze until [^(]* \().+?(\) goes on here|$)", re.S
)


def without_freeze_reasons(message: str) -> str:
    return _FREEZE_REASON.sub(lambda noted: noted[1] + ERASED_REASON + noted[2], message)


def _erase(member: Member, by) -> str:
    """Erase one account; returns its new code."""
    token = uuid.uuid4().hex[:20]
    member.erased_code = code_digest(member.external_id)
    member.external_id = f"ERASED-{token}"
    member.email = f"{token}@erased.invalid"
    member.first_name = member.last_name = member.phone = ""
    member.birth_date = None
    if member.freeze_reason:  # "illness", typed by staff: the freeze itself goes on
        member.freeze_reason = ERASED_REASON
    member.erased_at, member.erased_by = timezone.now(), by
    member.save(
        update_fields=[
            "external_id",
            "erased_code",
            "email",
            "first_name",
            "last_name",
            "phone",
            "birth_date",
            "freeze_reason",
            "erased_at",
            "erased_by",
        ]
    )
    drop_unsent(member, Notification.objects.all(), why="the member was erased")
    # Why the mail server refused a message sent since names the address it refused, and
    # the messages sent keep the name and the address they went to.
    Notification.objects.filter(member=member).exclude(last_error="").update(
        last_error=ERASED_REASON
    )
    Notification.objects.filter(member=member).exclude(sent_text="").update(
        sent_to="", sent_text=ERASED_TEXT
    )
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Member), object_id=str(member.pk)
    ).update(object_repr=str(member))
    return member.external_id


def merge_members(*, survivor, duplicate, by, reason, now=None) -> Member:
    """Merge a customer's duplicate account into the one they keep (DESIGN.md, "Member
    360": the contract names it here). The rule writes the ledger and requalifies
    tiers, which sit above members: it lives in points.services.merging, imported when
    called (the one import of members upward, allowed by name in pyproject's
    import-linter contract)."""
    from points.services.merging import merge_members as merge

    return merge(survivor=survivor, duplicate=duplicate, by=by, reason=reason, now=now)


def drop_unsent(member: Member, messages, *, why: str) -> None:
    """Drop the member's unsent `messages` (a Notification queryset): their address is
    gone, or the points they name moved. The points.expiring events of the expiry
    reminders among them are withdrawn too (core.events.withdraw): their data goes."""
    dropped = list(messages.filter(member=member, sent_at=None).values_list("pk", flat=True))
    events.withdraw(
        events.EventType.POINTS_EXPIRING,
        member_id=member.pk,
        subject_ids=dropped,
        why=f"Not sent: the reminder was dropped ({why}).",
    )
    Notification.objects.filter(pk__in=dropped).delete()


OUTBOX_BATCH = 500  # messages a run of send_pending_notifications takes at most


def send_pending_notifications(*, limit: int = OUTBOX_BATCH, now=None) -> int:
    """Send up to `limit` outbox messages by e-mail, each in its own transaction, marked
    sent as it goes: a failure midway re-sends at most the message it was sending. A
    message the server refuses for good (a 5xx answer to its address or its content) is
    counted and tried again on later runs, after the messages never tried, so it holds
    none up, until it has been refused for Notification.REFUSED_FOR_AT_MOST: then it is
    given up. A server that cannot be reached, drops the connection, stops answering,
    refuses the programme's sender address or asks to try later (a 4xx answer: a rate
    limit, greylisting) stops the run (the error raised once the run is recorded): the
    rest wait for the next. The message it was sending is counted too, not as refused
    (no day runs out for it), so that one the server never takes (a check of its address
    that times out) goes after the others next time, not first for ever.
    Messages to erased members are dropped (their address is gone). Returns how many
    were sent.

    Workers running at once take different rows (SKIP LOCKED)."""
    now = now or timezone.now()
    unsent = Notification.objects.filter(sent_at=None).exclude(Notification.given_up(now))
    due = list(unsent.order_by("failed_attempts", "pk").values_list("pk", flat=True)[:limit])
    if not due:
        return 0
    sent, stopped = 0, None
    with get_connection() as connection:
        for pk in due:
            with transaction.atomic():
                notification = (
                    unsent.filter(pk=pk)
                    .select_related(*WRITTEN_FROM)
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                )
                if notification is None:
                    continue  # sent meanwhile, or being sent by another worker
                if notification.member.erased_at:  # queued by a job after the erasure
                    drop_unsent(notification.member, unsent.filter(pk=pk), why="erased")
                    continue
                if outdated(notification):  # the member moved on since (D4)
                    notification.delete()
                    continue
                email = email_message(notification)
                try:
                    connection.send_messages([email])
                except (smtplib.SMTPException, OSError, ValueError) as error:
                    if _refused(error):
                        _count_failure(notification, error, now)
                        continue
                    _count_failure(notification, error, now, refused=False)  # the server's
                    stopped = error
                    break  # the count committed
                unsent.filter(pk=pk).update(
                    sent_at=timezone.now(), **Notification.sent_fields(email)
                )
                sent += 1
    if stopped:
        raise stopped
    return sent


def send_again(*, notifications) -> int:
    """Messages the mail server refused, or gave up on (an address with a typo, since
    corrected), go again with the next run, counted afresh. A message sent is never sent
    twice, nor is one dropped. Returns how many will go."""
    return notifications.filter(sent_at=None, first_refused_at__isnull=False).update(
        failed_attempts=0, last_error="", first_refused_at=None
    )


def _refused(error: Exception) -> bool:
    """Whether the mail server (or the message itself) refused this message for good: a
    5xx answer to its address or its content, or a message that cannot be written (a
    header with a line break, an address it cannot encode: ValueError). Anything else,
    a 4xx answer (try later), a server out of reach, gone, silent or refusing the
    programme's own sender address (every message's), stops the run."""
    if isinstance(error, ValueError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500


def _count_failure(notification: Notification, error: Exception, now, refused=True) -> None:
    """An attempt that failed, said on the Notifications page; `refused`: by the server,
    for this message, which starts the day after which it is given up."""
    logger.warning("Message %s not sent: %r", notification.pk, error)
    refusal = {"first_refused_at": Coalesce("first_refused_at", Value(now))} if refused else {}
    Notification.objects.filter(pk=notification.pk).update(
        failed_attempts=F("failed_attempts") + 1, last_error=_in_words(error)[:255], **refusal
    )


def _in_words(error: Exception) -> str:
    """Why a message was not sent, as staff read it on the Notifications page: the mail
    server's answer ("550 5.1.1 User unknown"), not Python's."""

    def said(code, text) -> str:
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return f"{code} {' '.join(text.split())}"

    later = "" if _refused(error) else ", for now: tried again"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = (f"{address}: {said(*answer)}" for address, answer in error.recipients.items())
        return f"The mail server refused the address{later} ({'; '.join(refused)})."
    if isinstance(error, smtplib.SMTPSenderRefused):  # every message's: tried again next run
        answer = said(error.smtp_code, error.smtp_error)
        return f"The mail server refused the programme's sender address ({answer}): tried again."
    if isinstance(error, smtplib.SMTPResponseException):  # the message refused
        answer = said(error.smtp_code, error.smtp_error)
        return f"The mail server refused the message{later} ({answer})."
    if isinstance(error, ValueError):
        return f"The message could not be written: {error}."
    return f"The mail server stopped answering while it was sent ({error}): tried again."


def _dates_read(context: dict) -> dict:
    """A message's context as its template reads it: the dates, kept in JSON as ISO
    strings under keys ending in _on, as dates."""
    return {
        key: date.fromisoformat(value) if key.endswith("_on") else value
        for key, value in context.items()
    }


# What a message is written from (email_message), read with it.
WRITTEN_FROM = (
    "member",
    "tier_change__from_tier",
    "tier_change__to_tier",
    "tier_change__qualified_tier",
)


def email_message(notification: Notification) -> EmailMessage:
    """The e-mail of a notification: templates/notifications/<kind>.txt, whose first
    line is the subject. The Notifications page shows it as the member reads it."""
    # Names on one line: one kept from before names were checked (readable_name) may hold
    # a line break, which would end the subject at it.
    member = copy.copy(notification.member)
    member.first_name = " ".join(member.first_name.split())
    member.last_name = " ".join(member.last_name.split())
    context = {
        "member": member,
        "change": notification.tier_change,
        "points": notification.points,
        "cutoff": notification.cutoff,
        **_dates_read(notification.context),
    }
    if notification.kind == Notification.Kind.DEGRADATION:
        context["ended_match"] = match_ended_with(notification.tier_change)
    template = get_template(f"notifications/{notification.kind}.txt").template
    text = template.render(Context(context, autoescape=False)).strip()  # plain text: O'Brien
    subject, _, body = text.partition("\n")
    return EmailMessage(
        subject=" ".join(subject.split()),  # a name with a line break breaks no header
        body=body.strip() + "\n",
        to=[notification.member.email],
    )
