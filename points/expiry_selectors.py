"""Expiry (E1-E4) as queries: the cutoffs of a policy, the one to come, and what each
takes (points_at_stake), which the preview, the reminders and the run all read."""

import calendar
import copy
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import BigIntegerField, Case, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from core import figures
from core.days import end_of
from core.db import whole_table_read
from members.models import Member
from members.selectors import effective_tier_at, tier_at
from points.models import ExpiryPolicy, ExpiryRun, LedgerEntry
from tiers.models import DegradationPolicy, Tier
from tiers.selectors import (
    Ranking,
    degradation_steps,
    frozen_last_day,
    held_above_by_match,
    inactive_since,
    inactivity_leaves,
    step_reached,
)

if TYPE_CHECKING:  # the programme reads the coming cutoff from here: no import back
    from points.selectors import Programme

CUTOFF_MONTHS = {
    ExpiryPolicy.Cycle.MONTHLY: range(1, 13),
    ExpiryPolicy.Cycle.QUARTERLY: (3, 6, 9, 12),
    ExpiryPolicy.Cycle.ANNUAL: (12,),
}


def cutoff_dates(cycle: str, first: date, last: date) -> list[date]:
    """E1: the cutoff days of a cycle from `first` to `last`, both included."""
    months = CUTOFF_MONTHS.get(cycle)
    if not months or first > last:
        return []
    cutoffs = []
    for year in range(first.year, last.year + 1):
        for month in months:
            day = date(year, month, calendar.monthrange(year, month)[1])
            if first <= day <= last:
                cutoffs.append(day)
    return cutoffs


def cutoff_instant(day: date) -> datetime:
    """The end of a cutoff day in the programme's time zone (core.days.end_of)."""
    return end_of(day)


def next_cutoff(policy: ExpiryPolicy, today: date) -> date | None:
    """The first cutoff on or after `today` that counts (E1: not before `starts_on`)."""
    if policy.cycle == ExpiryPolicy.Cycle.NEVER or policy.starts_on is None:
        return None
    first = max(today, policy.starts_on)
    upcoming = cutoff_dates(policy.cycle, first, first + timedelta(days=366))
    return upcoming[0] if upcoming else None


def cutoff_on_or_after(policy: ExpiryPolicy, day: date) -> date | None:
    """The first cutoff on or after `day` as it happened or will: a cutoff already run
    stays one whatever the cycle and start say now (preview_expiry --date of a cutoff
    run before the cycle changed), else the policy's next one (next_cutoff)."""
    ran = ExpiryRun.objects.filter(cutoff__gte=day).order_by("cutoff")
    cutoffs = [ran.values_list("cutoff", flat=True).first(), next_cutoff(policy, day)]
    return min((cutoff for cutoff in cutoffs if cutoff), default=None)


def coming_cutoff(plan: "Programme", now) -> date | None:
    """The cutoff whose expiry comes next: the last one passed whose job has not run yet
    (a few minutes after midnight, or longer after downtime; what it takes then is all
    the catch-up of E3 takes), else the next one (next_cutoff). From the cached
    programme: no query."""
    passed = _awaiting_their_run(plan, now)
    return passed[-1] if passed else next_cutoff(plan.expiry, timezone.localdate(now))


def _awaiting_their_run(plan: "Programme", now) -> list[date]:
    """The passed cutoffs whose expiry job has not run yet, oldest first (E3)."""
    after = plan.expired_through
    return passed_cutoffs(plan.expiry, now, since=after and after + timedelta(days=1))


def member_cutoff(member: Member, plan: "Programme", now) -> tuple[date | None, int]:
    """The cutoff whose expiry takes this member's points next, and the member's
    effective tier id then (E2), for what a member is told will expire:
    - of the passed cutoffs whose job has not run, the latest at which their tier then
      expired: the catch-up takes at each in turn, and the latest one's stake counts
      what the earlier ones take (one query each, in the minutes before the job);
    - else the next cutoff, at the tier they will hold by then without a purchase
      (tier_expected_at).
    A cutoff at which the member is frozen takes nothing from them (points_at_stake):
    for a freeze, the first cutoff after it."""
    passed = _awaiting_their_run(plan, now)
    for cutoff in reversed(passed):
        if _frozen_at(member, cutoff):
            continue
        tier_id = tier_at(member, cutoff_instant(cutoff))
        if plan.ranking.by_pk[tier_id].points_expire:
            return cutoff, tier_id
    first = timezone.localdate(now)
    if member.frozen_until:
        first = max(first, frozen_last_day(member) + timedelta(days=1))
    cutoff = next_cutoff(plan.expiry, first)
    if cutoff is None:
        return None, member.effective_tier_id
    return cutoff, tier_expected_at(member, plan, cutoff)


def expected_tier_at(cutoff: date, ranking: Ranking, policy):
    """tier_expected_at as an expression over members (annotated with `inactive_since`),
    for the reminders, the preview and the dashboard: the effective tier id each member
    will hold at the end of a coming cutoff day without a purchase. The same rules as
    tier_expected_at, which reads one member row without a query (tested alike)."""
    # A match whose last day is before the cutoff, holding the member above their
    # qualified tier: ended by then, back to the qualified tier.
    match_ends = Q(granted_until__lt=cutoff) & held_above_by_match(ranking)
    expected = Case(
        When(match_ends, then=F("qualified_tier")),
        default=F("effective_tier"),
        output_field=BigIntegerField(),
    )
    if not policy.enabled:
        return expected
    # Then the degradation steps due by the cutoff's eve (the cutoff day's run applies
    # them), lowest first, held by the matches still running on the cutoff day.
    # In UTC, as the job's own clock.
    eve = end_of(cutoff - timedelta(days=1)).astimezone(UTC)
    steps = [
        When(
            Q(qualified_tier=qualified)
            & step_reached(eve, inactivity, higher, grants_on=cutoff)
            & (Q(effective_tier__in=higher) | match_ends),
            then=Value(tier.pk),
        )
        for qualified, tier, inactivity, higher in degradation_steps(policy, ranking)
    ]
    return Case(*steps, default=expected, output_field=BigIntegerField()) if steps else expected


def tier_then(cutoff: date, *, now=None, plan: "Programme | None" = None):
    """The effective tier id each member holds at the end of a cutoff day, as an
    expression over members (annotated with `inactive_since`): the tier history's for a
    cutoff passed by `now` (effective_tier_at), the forecast for one to come
    (expected_tier_at), under the programme `plan` when the caller has it."""
    end = cutoff_instant(cutoff)
    if end <= (now or timezone.now()):
        return effective_tier_at(end)
    if plan is None:
        return expected_tier_at(cutoff, Ranking(), DegradationPolicy.current())
    return expected_tier_at(cutoff, plan.ranking, plan.degradation)


def _frozen_at(member: Member, cutoff: date) -> bool:
    return bool(member.frozen_until and member.frozen_until >= cutoff_instant(cutoff))


def tier_expected_at(member: Member, plan: "Programme", cutoff: date) -> int:
    """The effective tier id the member will hold at the end of a coming cutoff day
    without a purchase: a status match whose last day is before the cutoff has ended
    (back to the qualified tier where it held the member above, as the nightly job
    does), and the degradation steps due before the cutoff day are applied (D2)."""
    ranking, expected = plan.ranking, copy.copy(member)
    granted = member.granted_tier_id
    if granted and member.granted_until < cutoff:
        if member.effective_tier_id == granted and ranking.higher(
            granted, member.qualified_tier_id
        ):
            expected.effective_tier_id = member.qualified_tier_id
        expected.granted_tier_id = expected.granted_until = None
    eve = end_of(cutoff - timedelta(days=1))  # a step due by then: the cutoff day's run applies it
    return inactivity_leaves(expected, plan.degradation, ranking, eve)


def unprocessed_cutoffs(policy: ExpiryPolicy, now) -> list[date]:
    """E3: the passed cutoffs of `policy` since its `starts_on` whose expiry is not
    complete, oldest first: what the next run of the job expires."""
    passed = passed_cutoffs(policy, now)
    if not passed:
        return []
    done = set(
        ExpiryRun.objects.filter(cutoff__gte=passed[0], cutoff__lte=passed[-1]).values_list(
            "cutoff", flat=True
        )
    )
    return [day for day in passed if day not in done]


def passed_cutoffs(policy: ExpiryPolicy, now, *, since: date | None = None) -> list[date]:
    """The cutoffs of `policy` from `since` (and its `starts_on`) whose day has ended by
    `now`, oldest first; none without an expiry cycle."""
    if policy.cycle == ExpiryPolicy.Cycle.NEVER or policy.starts_on is None:
        return []
    first = max(since or policy.starts_on, policy.starts_on)
    days = cutoff_dates(policy.cycle, first, timezone.localdate(now))
    return [day for day in days if cutoff_instant(day) <= now]


def reminder_day(policy: ExpiryPolicy, cutoff: date, today: date) -> date:
    """E4: the day members are reminded of `cutoff`: `reminder_days` before it, or
    today when that day is already past."""
    if policy.reminder_days >= (cutoff - today).days:
        return today
    return cutoff - timedelta(days=policy.reminder_days)


def expiry_impact(policy: ExpiryPolicy, today: date) -> dict | None:
    """What `policy` (saved or only posted) puts at stake: its next cutoff, the day
    members are reminded, and the members and points by effective tier (the query
    the job runs); None when no cutoff is coming. A few queries, whatever the number
    of members."""
    cutoff = next_cutoff(policy, today)
    if cutoff is None:
        return None
    return {
        "cutoff": cutoff,
        "days_left": (cutoff - today).days,
        "reminded_on": reminder_day(policy, cutoff, today),
        **stake_by_tier(cutoff),
        "exempt": list(Tier.objects.filter(points_expire=False).values_list("name", flat=True)),
    }


def stake_by_tier(cutoff: date) -> dict:
    """What the expiry of `cutoff` would take of today's balances, each member at the
    tier they hold at the cutoff: {"by_tier": [(tier, members, points)], "members",
    "points"}, from expiry_preview."""
    with whole_table_read():
        by_tier, _ = expiry_preview(cutoff)
    return {"by_tier": by_tier, **stake_totals(by_tier)}


def stake_totals(by_tier) -> dict:
    """{"members", "points"} at stake in all, from expiry_preview's rows by tier."""
    return {
        "members": sum(row[1] for row in by_tier),
        "points": sum(row[2] for row in by_tier),
    }


# The largest stakes the preview page lists, kept with the totals: twenty pages of 50.
PREVIEW_LARGEST = 1_000


def kept_preview(cutoff: date, plan: "Programme", *, max_age=figures.WARMED_SECONDS) -> dict:
    """expiry_preview of the coming `cutoff`, kept a few minutes like the dashboard's
    figures (core.figures: taken again after an import, a job or a change of the
    programme): {"value": {"by_tier", "largest"}, "as_of"}, `largest` the
    PREVIEW_LARGEST members who would lose most, as (member id, tier then, points):
    no personal data kept (with_members names a page's). Two reads of every member's
    ledger (seconds at a million members), shared by the preview page and the
    dashboard, whose beat job takes them before the first visit."""

    def compute():
        with whole_table_read():
            by_tier, members = expiry_preview(cutoff, plan=plan)
            largest = members.values_list("member", "tier_then", "at_stake")
            return {"by_tier": by_tier, "largest": list(largest[:PREVIEW_LARGEST])}

    return figures.kept(f"expiry-preview:{cutoff}", compute, version=plan.version, max_age=max_age)


def with_members(stakes) -> list[dict]:
    """kept_preview's (member id, tier then, points) rows as expiry_preview's members
    are, with each member's code and name as they are now: an erasure or a change of
    name shows at once. One query."""
    names = Member.objects.only("external_id", "first_name", "last_name")
    members = names.in_bulk([pk for pk, _, _ in stakes])
    return [
        {
            "member": pk,
            "member__external_id": members[pk].external_id,
            "member__first_name": members[pk].first_name,
            "member__last_name": members[pk].last_name,
            "tier_then": tier,
            "at_stake": points,
        }
        for pk, tier, points in stakes
        if pk in members  # members are never deleted; should one be, its row goes
    ]


def points_at_stake(
    cutoff: date, *, first_id=None, last_id=None, frozen=False, now=None, then=None
):
    """E2 as one grouped query: per member whose effective tier at the end of the
    cutoff day had points that expire (tier_then: for a cutoff passed by `now`, the
    tier history's, so that a tier reached or lost since does not count and a late run
    is a run on time; for one to come, the tier they will hold then), the
    available balance at the end of the cutoff day (pending points excluded) less what
    the member spent since, when that is positive. Spending after the cutoff, before
    the job ran, comes out of the expiring points first, so expiry never takes points
    earned after the cutoff; a return since is not spending, so a late run expires what
    a run on time would have. Optionally limited to the
    members with ids in [first_id, last_id], for chunked runs.

    A member frozen at the cutoff (frozen_until at or after its end) is skipped for
    that cutoff: their points wait for the next cutoff after the freeze. So is a member
    a later cutoff's run has reached (`expired_through`): cutoffs run in order, so this
    one was run for them before, and a second run that listed it earlier would write an
    entry the cached balance never counts (sql.count_expiry_in_balances). `frozen=True`
    gives those skipped instead, for the previews. `then`: tier_then, when the caller
    has it.

    The preview, the reminders and the expiry run all read this one query."""
    end = cutoff_instant(cutoff)
    expiring = Tier.objects.filter(points_expire=True).values("pk")
    then = tier_then(cutoff, now=now) if then is None else then
    members = Member.objects.alias(inactive_since=inactive_since(), tier_then=then)
    members = members.filter(tier_then__in=expiring).exclude(expired_through__gt=cutoff)
    frozen_at_cutoff = Q(frozen_until__gte=end)
    members = members.filter(frozen_at_cutoff) if frozen else members.exclude(frozen_at_cutoff)
    entries = LedgerEntry.objects.filter(redeemable=True)
    if first_id is not None:  # on both sides, so each table is read by index range
        members = members.filter(pk__gte=first_id, pk__lte=last_id)
        entries = entries.filter(member__gte=first_id, member__lte=last_id)
    return (
        entries.filter(member__in=members.values("pk"))
        .exclude(kind=LedgerEntry.Kind.EXPIRY, cutoff=cutoff)
        .order_by()
        .values("member")
        .annotate(at_stake=stake_sum(end))
        .filter(at_stake__gt=0)
    )


def expiry_skipped(cutoff: date, *, limit: int) -> tuple[int, list]:
    """Members whose points the expiry of `cutoff` would take but for a freeze: (how
    many, the first `limit` largest first as [(member, points, why)])."""
    stake = points_at_stake(cutoff, frozen=True)
    count = stake.count()
    rows = list(stake.values_list("member", "at_stake").order_by("-at_stake", "member")[:limit])
    members = Member.objects.in_bulk([pk for pk, _ in rows])
    return count, [
        (
            members[pk],
            points,
            f"frozen until {frozen_last_day(members[pk]):%-d %b %Y}: {members[pk].freeze_reason}",
        )
        for pk, points in rows
    ]


def stake_sum(end: datetime, counted: Q | None = None):
    """E2's sum over a member's redeemable `counted` entries: available by the end of
    the cutoff day (`end`), plus what was spent since. A return since is not spending:
    it takes back points of its own purchase, whenever the job runs (P4)."""
    counted = counted or Q()
    before = counted & Q(issued_at__lt=end, accrue_at__lt=end)
    return Coalesce(Sum("points", filter=before), 0) + _spent_since(end, counted)


def _spent_since(end: datetime, counted: Q):
    """What the member spent since `end` (a negative sum): what took points, but for
    returns (their own purchase's points) and staff's adjustments, which count only as
    far as they take more than staff gave since (+500 given by mistake and taken back
    is no spending)."""
    since = counted & Q(issued_at__gte=end)
    adjusted = since & Q(kind=LedgerEntry.Kind.ADJUSTMENT)
    spent = (
        since
        & Q(points__lt=0)
        & ~Q(kind__in=[LedgerEntry.Kind.RETURN, LedgerEntry.Kind.ADJUSTMENT])
    )
    return Coalesce(Sum("points", filter=spent), 0) + Least(
        Coalesce(Sum("points", filter=adjusted), 0), Value(0)
    )


# stake_sum for one member, read from the other end (a speed mechanism beside the rule).


def since_the_end(end: datetime) -> Q:
    """The redeemable entries stake_sum does not count as available by `end`: issued or
    available at or after it. The cutoff's own expiry entries are among them (issued
    at the end), so which entries are `counted` changes nothing here."""
    return Q(issued_at__gte=end) | Q(accrue_at__gte=end)


def stake_less_balance(end: datetime, counted: Q | None = None):
    """stake_sum less the member's balance (the ledger's cache of all their redeemable
    entries), summed over since_the_end(end) alone: what they hold less what came or
    became available since, plus what they spent since. For the one member the API and
    the member page read on every request: a corporate card's million entries before
    the cutoff are not summed (120 ms a summary at 500,000)."""
    since = Sum("points", filter=since_the_end(end))
    return _spent_since(end, counted or Q()) - Coalesce(since, 0)


def stake_cte(stake) -> tuple[str, list]:
    """`points_at_stake` as `WITH stake(member_id, at_stake) AS (...)`, for the
    statements that insert from it (column names fixed the same way on every database)."""
    sql, params = stake.values_list("member", "at_stake").query.sql_with_params()
    return f"WITH stake(member_id, at_stake) AS ({sql})", list(params)


def expiry_preview(cutoff: date, *, plan: "Programme | None" = None):
    """What the expiry of `cutoff` would take of today's balances, read from the query
    the run uses: [(tier, members, points)] by effective tier at the cutoff (tier_then:
    the one a member will hold then, for a cutoff to come), and the members with that
    tier (a queryset, largest first, for paging)."""
    then = tier_then(cutoff, plan=plan)
    stake = points_at_stake(cutoff, then=then)
    with_stake, params = stake_cte(stake)
    # By the tier the run reads: the one each member holds at the end of the cutoff day.
    tiers_then = Member.objects.order_by().annotate(inactive_since=inactive_since(), tier_then=then)
    then_sql, then_params = tiers_then.values_list("pk", "tier_then").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            {with_stake}, then_tier(member_id, tier_id) AS ({then_sql})
            SELECT t.name, COUNT(*), SUM(s.at_stake)
            FROM stake s
            JOIN then_tier m ON m.member_id = s.member_id
            JOIN {Tier._meta.db_table} t ON t.id = m.tier_id
            GROUP BY t.name, t.threshold ORDER BY t.threshold
            """,
            [*params, *then_params],
        )
        by_tier = cursor.fetchall()
    # Each member with that tier's name too (evaluated for the rows of a page only).
    name_then = (
        Member.objects.filter(pk=OuterRef("member"))
        .annotate(inactive_since=inactive_since(), then=then)
        .annotate(name=Subquery(Tier.objects.filter(pk=OuterRef("then")).values("name")[:1]))
        .values("name")[:1]
    )
    members = (
        stake.annotate(tier_then=Subquery(name_then))
        .values(
            "member",
            "member__external_id",
            "member__first_name",
            "member__last_name",
            "tier_then",
            "at_stake",
        )
        .order_by("-at_stake", "member")
    )
    return by_tier, members
