"""Goodwill limits (governance of manual points): what a staff user may give by hand on
their own, per adjustment and per calendar month (in TIME_ZONE), by staff group; above
it an adjustment becomes a request that another user with points.approve_adjustment
(a CX supervisor) approves, applied through adjust_points once, or rejects.

Whose limit: a superuser has none; a user in groups with limits has the most generous
of them (each figure on its own, as permissions add up); a staff user in no group with
a limit has the strictest configured; with no limit configured at all, there is none
(MAX_ADJUSTMENT_POINTS still caps one adjustment). Only positive points count: taking
points away is never goodwill. What a user gave in a month is their positive
adjustments and grant rows issued that month, not the requests a supervisor approved
(those were not given on the user's own authority).

Who approves: a CX supervisor other than the requester, within the limit per adjustment
set for their own groups, if one is: a request above it waits for a supervisor whose
limit covers it, or a superuser; so no one gives more in one adjustment through a
colleague than on their own."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core.staff_input import clean_reason
from members.selectors import check_open
from points.models import MANUAL_ADJUSTMENT, AdjustmentLimit, AdjustmentRequest, LedgerEntry
from points.selectors import programme
from points.services.adjustments import (
    adjust_points,
    check_adjuster,
    check_adjustment,
    check_definition,
)
from points.services.posting import lock_member
from points.services.rules import check_receives

Status = AdjustmentRequest.Status
APPROVE = "points.approve_adjustment"


@dataclass(frozen=True, slots=True)
class Limits:
    per_adjustment: int
    per_month: int


def limits_for(user) -> Limits | None:
    """The user's goodwill limits (see the module), None when unlimited. One query."""
    if user.is_superuser:
        return None
    rows = list(
        AdjustmentLimit.objects.annotate(
            mine=Exists(user.groups.filter(pk=OuterRef("group")))
        ).values_list("per_adjustment", "per_month", "mine")
    )
    if not rows:
        return None
    mine = [row for row in rows if row[2]]
    pick = max if mine else min
    rows = mine or rows
    return Limits(pick(r[0] for r in rows), pick(r[1] for r in rows))


def _own_limit(user):
    """An approver's limit per adjustment, for the user `user` names (an OuterRef): the
    highest set for their own groups; null, none set: unlimited (the module)."""
    own = AdjustmentLimit.objects.filter(group__user=user).order_by("-per_adjustment")
    return Subquery(own.values("per_adjustment")[:1])


def approvers_limit(user) -> int | None:
    """The most points `user` may approve in one request (_own_limit), None: any."""
    if user.is_superuser:
        return None
    users = get_user_model().objects.filter(pk=user.pk)
    return users.values_list(_own_limit(OuterRef("pk")), flat=True).get()


def month_bounds(now) -> tuple[datetime, datetime]:
    """The calendar month of `now` in the programme's time zone, as [start, end)."""
    day = timezone.localdate(now).replace(day=1)
    following = day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)
    start, end = (datetime.combine(d, datetime.min.time()) for d in (day, following))
    return timezone.make_aware(start), timezone.make_aware(end)


def given_this_month(user, now) -> int:
    """Points `user` gave on their own authority in the month of `now` (module)."""
    start, end = month_bounds(now)
    total = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.ADJUSTMENT,
            created_by=user,
            issued_at__gte=start,
            issued_at__lt=end,
            points__gt=0,
            request__isnull=True,
        )
        .aggregate(total=Sum("points"))
        .get("total")
    )
    return total or 0


def above_limit(limits: Limits | None, points: int, given: int, now, *, by_file: int = 0) -> str:
    """Why giving `points` after `given` this month needs a supervisor ("" if not);
    `by_file`, of `given`, the earlier rows of a grants file, said apart."""
    if limits is None or points <= 0:
        return ""
    if points > limits.per_adjustment:
        return f"above the limit of {limits.per_adjustment:,} points per adjustment"
    if given + points > limits.per_month:
        month = date_format(timezone.localtime(now), "F Y")
        if not by_file:
            return (
                f"above the monthly limit of {limits.per_month:,} points "
                f"({given:,} already given in {month})"
            )
        return (
            f"above the monthly limit of {limits.per_month:,} points ({given - by_file:,} "
            f"given in {month} before this file, {by_file:,} by its rows above)"
        )
    return ""


def lock_user(user) -> None:
    """Serialize one user's adjustments, so that two at once cannot both pass the
    monthly limit. (SQLite's write transaction already excludes other writers.)

    FOR NO KEY UPDATE: it excludes the same lock, and lets rows that only name the
    user (a ledger line in their name, a merge by them) be written meanwhile. A full
    FOR UPDATE would make such a writer, holding a member's lock, wait for this one,
    which waits for that member: a supervisor approving the user's request while the
    user adjusts the same customer deadlocked."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).exists()


def adjust_or_request(
    *, member, points, reason, by, definition=None, now=None
) -> LedgerEntry | AdjustmentRequest:
    """An adjustment by hand under the giver's goodwill limits: within them,
    adjust_points; above them, a pending request with the same content, checked as
    the adjustment would be."""
    reason = check_adjustment(points, reason)
    check_adjuster(by)
    with transaction.atomic():
        lock_user(by)
        moment = now or timezone.now()
        why = above_limit(limits_for(by), points, given_this_month(by, moment), moment)
        if not why:
            return adjust_points(
                member=member, points=points, reason=reason, by=by, definition=definition, now=now
            )
        definition = definition or programme().definition(MANUAL_ADJUSTMENT)
        check_definition(definition, points)
        # Under the member's lock, as every writer: a merge committing meanwhile has
        # moved the account's requests (M5), and this one is refused, not left behind.
        member, _ = lock_member(member)
        check_open(member)
        check_receives(member, points=points, field="points")
        return AdjustmentRequest.objects.create(
            member=member,
            points=points,
            reason=reason,
            definition=definition,
            above=why,
            requested_by=by,
            requested_at=moment,
        )


def approve_request(*, request: AdjustmentRequest, by, reason="", now=None) -> AdjustmentRequest:
    """A CX supervisor approves: the adjustment is applied through adjust_points, in
    the giver's name, in the same transaction. The status changes by a conditional
    update, so approving twice, or two supervisors at once, applies it once."""
    reason = _decision_reason(reason, required=False)
    _check_decider(request, by)
    if refusal := above_approvers_limit(request.points, approvers_limit(by)):
        raise ValidationError(refusal)
    with transaction.atomic():
        # The member first, as a merge locks it before moving its requests: the other
        # way round, the two deadlock. A request moved by a merge gives to the survivor.
        member, _ = lock_member(request.member, follow_merge=True)
        now = now or timezone.now()
        _decide(request, by, Status.APPROVED, reason, now)
        entry = adjust_points(
            member=member,
            points=request.points,
            reason=request.reason,
            by=request.requested_by,
            definition=request.definition,
            approved=True,
            now=now,  # issued when it was approved
        )
        AdjustmentRequest.objects.filter(pk=request.pk).update(entry=entry)
    request.refresh_from_db()
    return request


def reject_request(*, request: AdjustmentRequest, by, reason, now=None) -> AdjustmentRequest:
    """A CX supervisor rejects, saying why; nothing is written to the ledger."""
    reason = _decision_reason(reason, required=True)
    _check_decider(request, by)
    with transaction.atomic():
        _decide(request, by, Status.REJECTED, reason, now or timezone.now())
    request.refresh_from_db()
    return request


ERASED_DECISION = "The member was erased at their request: their points can never be used."


def reject_requests_of_erased(sender, *, accounts, **kwargs) -> None:
    """members.signals.member_codes_erased: the requests still waiting for the accounts
    just erased are rejected, in the erasure's transaction (approving one would give
    points nobody can use: refused, and left in the queue for ever)."""
    waiting = AdjustmentRequest.objects.filter(
        member_id__in=accounts, member__erased_at__isnull=False, status=Status.PENDING
    )
    waiting.update(
        status=Status.REJECTED, decided_at=timezone.now(), decision_reason=ERASED_DECISION
    )


def above_approvers_limit(points: int, limit: int | None) -> str:
    """Why an approver whose limit is `limit` (approvers_limit) may not approve `points`
    ("" if they may)."""
    if limit is None or points <= limit:
        return ""
    return (
        f"{points:,} points is above your own limit of {limit:,} per "
        "adjustment: a supervisor whose limit covers it, or a superuser, approves it."
    )


def who_approves(request: AdjustmentRequest) -> str:
    """Who may decide a request, for the staff user who sent it: a CX supervisor
    (another one) whose own limit covers it, or, when none does, a superuser. One
    query, however many supervisors (_own_limit)."""
    app_label, codename = APPROVE.split(".")
    perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    limits = list(
        get_user_model()
        .objects.filter(Q(groups__permissions__in=perm) | Q(user_permissions__in=perm))
        .filter(is_active=True, is_staff=True, is_superuser=False)
        .exclude(pk=request.requested_by_id)
        .values("pk")
        .distinct()
        .annotate(own=_own_limit(OuterRef("pk")))
        .values_list("own", flat=True)
    )
    if any(own is None or request.points <= own for own in limits):
        return "A CX supervisor approves or rejects it"
    if not limits:
        return "No other user may approve requests: a superuser approves or rejects it"
    return (
        "It is above every CX supervisor's own limit per adjustment: a superuser approves "
        "or rejects it"
    )


def _decision_reason(reason, *, required: bool) -> str:
    missing = "Say why the request is rejected: the agent reads it." if required else ""
    reason = clean_reason(reason, errors := {}, missing=missing)
    if errors:
        raise ValidationError(errors)
    return reason


def _check_decider(request: AdjustmentRequest, by) -> None:
    if by is None or not by.is_staff or not by.has_perm(APPROVE):
        raise PermissionDenied("Only a CX supervisor approves or rejects adjustments.")
    if request.requested_by_id == by.pk:
        raise ValidationError(
            "You sent this request: another CX supervisor approves or rejects it."
        )


def _decide(request: AdjustmentRequest, by, status: str, reason: str, now) -> None:
    """Move a pending request to `status`, or say who decided it first."""
    decided = AdjustmentRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
        status=status, decided_by=by, decided_at=now, decision_reason=reason
    )
    if decided:
        return
    first = AdjustmentRequest.objects.select_related("decided_by").get(pk=request.pk)
    when = date_format(timezone.localtime(first.decided_at), "j M Y \\a\\t H:i")
    outcome = (
        "its points were given once"
        if first.status == Status.APPROVED
        else "no point was given, nor is any now"
    )
    raise ValidationError(
        f"This request was already {first.get_status_display().lower()} "
        f"{first.decider} on {when}: {outcome}."
    )
