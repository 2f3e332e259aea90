"""Status matches (grant_status): a tier granted until a date, carried by a merge,
ended by the nightly tier job."""

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, Case, F, When
from django.utils import timezone

from core.ids import renamer
from core.staff_input import check_last_day, clean_reason
from core.words import shortened
from members.models import Member, Notification
from members.selectors import check_not_erased, check_open
from tiers.models import DegradationPolicy, StatusGrant, Tier
from tiers.selectors import Ranking, held_above_by_match, inactivity_leaves
from tiers.services.history import (
    Reason,
    TierLog,
    announce_changes,
    apply_changes,
    notify,
    record_change,
)
from tiers.services.qualification import follow_new_rules

# A status match lasts at most this long: a longer one is a typo, or a tier to qualify for.
MAX_STATUS_MATCH_DAYS = 731
REASON_LENGTH = StatusGrant._meta.get_field("reason").max_length


# What granting or ending a match writes on the member: the tiers the rules give now
# (T3: follow_new_rules first), and the match.
MATCH_FIELDS = ["qualified_tier", "effective_tier", "best_tier", "granted_tier", "granted_until"]


def grant_status(*, member, tier: Tier, until: date, reason: str, by, now=None) -> StatusGrant:
    """A status match: the member's effective tier is `tier` until the end of `until`
    (in TIME_ZONE), whatever degradation says; then the rules apply again (the nightly
    degradation job ends it: end_status_grants). Only above the qualified tier; no
    tier-up bonus and the highest tier ever reached is unchanged, so really qualifying
    for the tier later pays its bonus (T2). A new match replaces a running one.
    Recorded in the tier history (T4), sent as member.tier_changed, and the member is
    told their tier and its last day. The same tier and last day as the running match
    changes nothing: that match is returned, and the member told nothing twice."""
    now = now or timezone.now()
    errors = {}
    missing = "Say why the tier is granted (e.g. the competitor's card)."
    reason = clean_reason(reason, errors, missing=missing, limit=REASON_LENGTH)
    today = timezone.localdate(now)
    check_last_day(
        until,
        errors,
        earliest=today + timedelta(days=1),
        latest=today + timedelta(days=MAX_STATUS_MATCH_DAYS),
        missing="Give the status match's last day: a date after today.",
        too_late="A status match lasts at most two years: give an earlier last day.",
    )
    if by is None or not by.is_staff:
        errors["__all__"] = "A status match must name the staff user who grants it."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The member's lock, as every writer of its tier takes it.
        member = Member.objects.select_for_update(of=("self",)).get(pk=member.pk)
        check_open(member)
        check_not_erased(member, "a status match")
        ranking = Ranking()
        # T3 first, as before a purchase: the tier the rules give now, if thresholds
        # changed and the recalculation has not reached this member yet
        log = TierLog()
        follow_new_rules(member, ranking, DegradationPolicy.current(), log=log)
        if not ranking.higher(tier.pk, member.qualified_tier_id):
            qualified = ranking.by_pk[member.qualified_tier_id]
            raise ValidationError(
                {
                    "tier": f"{member.external_id} already qualifies for {qualified}: a status "
                    "match grants a higher tier."
                }
            )
        running = StatusGrant.objects.filter(member=member, ended_at=None)
        same = running.filter(tier=tier, until=until).first()
        if same is not None:  # granted again as it runs (a second tab, a double click)
            return same
        running.update(ended_at=now, end=StatusGrant.End.REPLACED)
        grant = StatusGrant(
            member=member, tier=tier, until=until, reason=reason, granted_by=by, granted_at=now
        )
        grant.full_clean()
        grant.save()
        # Above the qualified tier, so above anything degradation gives: the granted tier.
        from_tier_id = member.effective_tier_id
        member.granted_tier_id = member.effective_tier_id = tier.pk
        member.granted_until = until
        # Dates in a message's context are ISO strings under a key ending in _on (JSON).
        told = dict(kind=Notification.Kind.STATUS_MATCH, last_day_on=until.isoformat())
        if from_tier_id == tier.pk:
            _tell_extension(member, tier, **told)
        else:
            change = record_change(
                member, log, reason=Reason.STATUS_MATCH, from_tier_id=from_tier_id, at=now, by=by
            )
            notify(member, log, change=change, **told)
        log.write()
        member.save(update_fields=MATCH_FIELDS)
    return grant


def end_status_match(*, member, reason: str, by, now=None) -> StatusGrant:
    """End a member's running status match now (given to the wrong member, say), as the
    nightly job ends one whose last day passed: the member goes back to the tier the
    rules give (their qualified tier), then drops as their inactivity says (D2), each
    change recorded (T4), sent and told to the member. Who ended it and why stay on the
    match."""
    now = now or timezone.now()
    errors = {}
    missing = "Say why the status match ends early (e.g. granted to the wrong member)."
    reason = clean_reason(reason, errors, missing=missing, limit=REASON_LENGTH)
    if by is None or not by.is_staff:
        errors["__all__"] = "A status match must name the staff user who ends it."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        member = Member.objects.select_for_update(of=("self",)).get(pk=member.pk)
        check_open(member)
        grant = StatusGrant.objects.filter(member=member, ended_at=None).first()
        if grant is None:
            raise ValidationError(f"{member.external_id} has no status match running.")
        StatusGrant.objects.filter(pk=grant.pk).update(
            ended_at=now, end=StatusGrant.End.ENDED, ended_by=by, end_reason=reason
        )
        ranking, log, policy = Ranking(), TierLog(), DegradationPolicy.current()
        # T3 first, as grant_status: back to the tier the rules give now
        follow_new_rules(member, ranking, policy, log=log)
        from_tier_id = member.effective_tier_id
        member.granted_tier_id = member.granted_until = None
        if ranking.higher(from_tier_id, member.qualified_tier_id):
            member.effective_tier_id = member.qualified_tier_id
        ended = record_change(
            member, log, reason=Reason.STATUS_MATCH_ENDED, from_tier_id=from_tier_id, at=now, by=by
        )
        notify(member, log, Notification.Kind.STATUS_MATCH_ENDED, ended)
        target = inactivity_leaves(member, policy, ranking, now)
        if target != member.effective_tier_id:  # what the nightly job's run would do next (D2)
            member.effective_tier_id = target
            dropped = record_change(
                member, log, reason=Reason.DEGRADATION, from_tier_id=ended.to_tier_id, at=now
            )
            notify(member, log, Notification.Kind.DEGRADATION, dropped)
        log.write()
        member.save(update_fields=MATCH_FIELDS)
    grant.refresh_from_db()
    return grant


def _tell_extension(member, tier, *, kind, **context) -> None:
    """A match renewed at the tier the member already has by it: no change of tier to
    record (T4) nor to send, but the member is told the new last day, in the message of
    the change that gave the tier."""
    granted = member.tier_changes.filter(to_tier=tier).latest("changed_at", "pk")
    Notification.objects.create(member=member, kind=kind, tier_change=granted, context=context)


def hold_granted_tier(member, ranking: Ranking, *, at, log: TierLog, reason, by=None) -> None:
    """The effective tier as the member's status match leaves it once a merge moved or
    ended one (in memory, the change recorded, T4): at least the granted tier while a
    match runs; without one, no higher than the qualified tier."""
    target = member.effective_tier_id
    if member.granted_tier_id and ranking.higher(member.granted_tier_id, target):
        target = member.granted_tier_id
    elif not member.granted_tier_id and ranking.higher(target, member.qualified_tier_id):
        target = member.qualified_tier_id
    if target != member.effective_tier_id:
        from_tier_id, member.effective_tier_id = member.effective_tier_id, target
        record_change(member, log, reason=reason, from_tier_id=from_tier_id, at=at, by=by)


def move_status_grant(*, duplicate, survivor, carried: bool, now, by) -> None:
    """A merge ends the duplicate's running status match; `carried`: it goes on for the
    survivor until its last day, in place of the survivor's own (the members already
    hold the tiers: hold_granted_tier), granted by whoever granted it (the merge, by
    `by`, is in both members' history)."""
    running = StatusGrant.objects.filter(member=duplicate, ended_at=None).first()
    if running is None:
        return
    StatusGrant.objects.filter(pk=running.pk).update(ended_at=now, end=StatusGrant.End.MERGED)
    if not carried:
        return
    StatusGrant.objects.filter(member=survivor, ended_at=None).update(
        ended_at=now, end=StatusGrant.End.REPLACED
    )
    reason = f"Carried over from {duplicate.external_id} (merged): {running.reason}"
    StatusGrant.objects.create(
        member=survivor,
        tier_id=running.tier_id,
        until=running.until,
        reason=shortened(reason, REASON_LENGTH),
        granted_by_id=running.granted_by_id,
        granted_at=now,
    )


def rename_erased_codes(sender, *, codes: dict[str, str], accounts: list[int], **kwargs) -> None:
    """members.signals.member_codes_erased: a match carried over by a merge names the
    account it came from ("Carried over from M-OLD (merged): ..."), which an erasure
    renames (rules.md, Erasing a member)."""
    renamed = renamer(codes)
    for pk, reason in StatusGrant.objects.filter(member__in=accounts).values_list("pk", "reason"):
        if (new := renamed(reason)) != reason:
            StatusGrant.objects.filter(pk=pk).update(reason=new)


def ending_status_grants(*, now, first_id: int, last_id: int):
    """The running status matches of the members with ids in [first_id, last_id] whose
    last day is before `now`'s (in TIME_ZONE): those end_status_grants ends."""
    return StatusGrant.objects.filter(
        ended_at=None,
        until__lt=timezone.localdate(now),
        member__gte=first_id,
        member__lte=last_id,
    )


def end_status_grants(ranking: Ranking, *, now, first_id: int, last_id: int) -> int:
    """End the status matches whose last day is before today (in TIME_ZONE) for the
    members with ids in [first_id, last_id], set-based: one history row each (reason
    status match ended, sent as member.tier_changed, and a message telling the member
    their tier now), the effective tier back to the
    qualified one where the grant held it above (the degradation that follows in the
    same run applies the member's inactivity), the grant closed. Idempotent: an ended
    grant is not running any more. Returns the number of grants ended. Most nights none
    ends: the job looks at ending_status_grants first."""
    today = timezone.localdate(now)
    members = Member.objects.filter(
        pk__gte=first_id, pk__lte=last_id, granted_tier__isnull=False, granted_until__lt=today
    )
    ended = ending_status_grants(now=now, first_id=first_id, last_id=last_id)
    ended = ended.filter(member__in=members)
    changes = members.annotate(
        target=Case(
            When(held_above_by_match(ranking), then=F("qualified_tier")),
            default=F("effective_tier"),
            output_field=BigIntegerField(),
        ),
        new_qualified=F("qualified_tier"),
    )
    count = apply_changes(changes, reason=Reason.STATUS_MATCH_ENDED, at=now)
    if count:
        ended.update(ended_at=now, end=StatusGrant.End.EXPIRED)
        members.update(granted_tier=None, granted_until=None)
        announce_changes(
            Reason.STATUS_MATCH_ENDED,
            Notification.Kind.STATUS_MATCH_ENDED,
            at=now,
            first_id=first_id,
            last_id=last_id,
        )
    return count
