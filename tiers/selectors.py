import math
import operator
from datetime import UTC, datetime, timedelta
from functools import reduce

from django.db import models
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    DateTimeField,
    ExpressionWrapper,
    F,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Greatest, TruncDate
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core.days import day_ending_at, end_of, start_of
from core.kept import named_by
from core.models import JobChunk, JobRun
from members.models import Member
from tiers.models import Tier


class Ranking:
    """The tiers in threshold order, loaded once, with rank look-ups (T1)."""

    def __init__(self, tiers=None):
        self.tiers = list(tiers if tiers is not None else Tier.objects.order_by("threshold"))
        self.rank = {tier.pk: i for i, tier in enumerate(self.tiers)}
        self.by_pk = {tier.pk: tier for tier in self.tiers}

    @property
    def entry(self) -> Tier:
        return self.tiers[0]

    def qualified_for(self, lifetime_points: int) -> Tier:
        """The highest tier whose threshold is at or below the lifetime points."""
        found = self.tiers[0]
        for tier in self.tiers:
            if tier.threshold <= lifetime_points:
                found = tier
        return found

    def next_above(self, tier_id: int) -> Tier | None:
        i = self.rank[tier_id] + 1
        return self.tiers[i] if i < len(self.tiers) else None

    def lower(self, tier_id: int, levels: int) -> Tier:
        """The tier `levels` ranks below, never below the lowest (D2)."""
        return self.tiers[max(0, self.rank[tier_id] - levels)]

    def higher(self, a: int, b: int) -> bool:
        """Whether tier `a` ranks above tier `b`."""
        return self.rank[a] > self.rank[b]

    def bands(self):
        """Each tier with its band of lifetime points [low, high); None is open-ended.
        The entry tier's band has no lower end, so no member falls outside all bands."""
        for i, tier in enumerate(self.tiers):
            low = tier.threshold if i else None
            high = self.tiers[i + 1].threshold if i + 1 < len(self.tiers) else None
            yield tier, low, high


def inactive_since():
    """When the member's inactivity started: the last purchase, or joining (D2)."""
    return Coalesce("last_purchase_at", "joined_at")


def degradation_steps(policy, ranking: Ranking):
    """D2 step by step: (qualified tier, target tier, inactivity that reaches it, ids of
    the tiers above the target). A member qualified for tier rank q, inactive for k full
    periods, belongs at rank max(0, q - k x levels_per_step); for each qualified tier
    the targets come lowest first."""
    period = timedelta(days=policy.inactivity_days)
    for q, qualified in enumerate(ranking.tiers):
        for t, tier in enumerate(ranking.tiers[:q]):
            periods = math.ceil((q - t) / policy.levels_per_step)
            yield qualified, tier, periods * period, [above.pk for above in ranking.tiers[t + 1 :]]


def held_above_by_match(ranking: Ranking) -> Q:
    """Members whose status match holds them above their qualified tier (the effective
    tier is the granted one, above the qualified): back to the qualified tier when the
    match ends."""
    above_qualified = Q(pk__in=[])
    for tier in ranking.tiers:
        above = [t.pk for t in ranking.tiers if ranking.higher(t.pk, tier.pk)]
        above_qualified |= Q(qualified_tier=tier, granted_tier__in=above)
    return above_qualified & Q(effective_tier=F("granted_tier"))


def held(now, inactive_until, higher, *, grants_on=None) -> Q:
    """What keeps a member from a degradation step to a tier below `higher` at `now`: a
    status match to one of those tiers running today (degradation never goes below the
    granted tier), or a freeze ending at or after `inactive_until`, the bound that
    inactivity must start before to reach the step (period_start): the clock restarts
    when a freeze ends, so frozen days never count as inactivity. `grants_on`: the day whose running
    matches hold, when not today's."""
    day = grants_on or timezone.localdate(now)
    granted = Q(granted_tier__in=higher, granted_until__gte=day)
    return granted | Q(frozen_until__gte=inactive_until)


def steps_due_by(now):
    """D2 counts whole days: a run at `now` applies the steps due by the start of its
    day (local midnight). Whenever the nightly run happens, the steps that fall due in
    a day are applied by the run after that day ends ("at tonight's run"), as the
    member page, the previews and the expiry forecasts count them, and a late or a
    second run that day gives the same tiers. In UTC, as `now` comes."""
    return end_of(timezone.localdate(now) - timedelta(days=1)).astimezone(UTC)


def steps_due_tonight(now):
    """The steps tonight's run applies (steps_due_by of the run after today ends): those
    due by the end of today. A purchase recorded at `now` leaves the member where that
    run would (D3), so that it has nothing to undo the night after. In UTC, as `now`
    comes."""
    return within_days(now, 0)


def within_days(now, days: int):
    """The steps due within `days` days of today (the dashboard's "at risk", the
    policy's preview): those whose day (drop_day_of) is at most today + `days`, whatever
    clock change comes between."""
    return end_of(timezone.localdate(now) + timedelta(days=days)).astimezone(UTC)


def period_end(since, inactivity: timedelta):
    """When a step of `inactivity` (whole days) counted from `since` falls due: at the
    end of the day that many days after the day of `since`, in the programme's calendar.
    D2 counts whole days: the day of the last purchase is not a day without one, whatever
    its hour (midnight included), so members who last bought on the same day drop on the
    same night, and no clock change moves it. The nightly run after that day applies it;
    that day is the one staff and members are told (drop_day_of)."""
    return end_of(timezone.localdate(since) + inactivity).astimezone(UTC)


def period_start(end, inactivity: timedelta):
    """The steps of `inactivity` due by `end` (period_end at or before it) are those of
    members inactive since before this moment (strictly): the start of the day that
    many days before `end`'s."""
    return start_of(timezone.localdate(end) - inactivity).astimezone(UTC)


def drop_day_of(when):
    """The day staff and members are told for a drop due at `when` (period_end, or a
    status match's end): the day that ends then. The nightly run after it applies the
    drop; a purchase until that run keeps the tier."""
    return day_ending_at(when)


def step_reached(now, inactivity, higher, *, holds: bool = True, grants_on=None) -> Q:
    """Members (annotated with `inactive_since`) whose inactivity reaches a step of
    degradation_steps by a run at `now` (steps_due_by), unless it is held (`held`;
    `holds=False`: whatever holds it)."""
    due = steps_due_by(now)
    start = period_start(due, inactivity)
    reached = Q(inactive_since__lt=start)
    if not holds:
        return reached
    return reached & ~held(due, start, higher, grants_on=grants_on)


def inactivity_tier(policy, ranking: Ranking, qualified: Tier, now, *, start: Tier = None):
    """D2 as an expression over members (annotated with `inactive_since`) qualified
    for `qualified`: the tier id their inactivity puts them at, as the job would, from
    `start` (the tier they would hold without it: by default `qualified`), never above."""
    start = start or qualified
    steps = [
        When(step_reached(now, inactivity, higher), then=Value(tier.pk))
        for of, tier, inactivity, higher in degradation_steps(policy, ranking)
        if of.pk == qualified.pk and ranking.rank[tier.pk] < ranking.rank[start.pk]
    ]
    if not (policy.enabled and steps):
        return Value(start.pk)
    return Case(*steps, default=Value(start.pk), output_field=BigIntegerField())


def members_to_degrade(policy, ranking: Ranking, now, *, holds: bool = True):
    """D2 as one queryset: the members whose effective tier is above where their
    inactivity puts them, annotated with that `target` tier id.

    The CASE lists the steps lowest target first, so the first inactivity bound a
    member passes is the lowest tier reached. The job only ever lowers a tier:
    restoring is a purchase's job (D3). Conditions name tier ids rather than joining
    the tier table, so that the update is a plain scan of the member table.
    A step a status match or a freeze holds is skipped (`held`); `holds=False` reads
    the steps as if nothing held them, for the previews' "skipped" lists."""
    if not policy.enabled:
        return Member.objects.none()
    targets, above_target = [], Q(pk__in=[])
    for qualified, tier, inactivity, higher in degradation_steps(policy, ranking):
        reached = Q(qualified_tier=qualified) & step_reached(now, inactivity, higher, holds=holds)
        targets.append(When(reached, then=Value(tier.pk)))
        above_target |= reached & Q(effective_tier__in=higher)
    if not targets:
        return Member.objects.none()
    return (
        Member.objects.annotate(inactive_since=inactive_since())
        .filter(above_target)
        .annotate(target=Case(*targets, output_field=BigIntegerField()))
    )


def frozen_last_day(member: Member):
    """The last day of the member's freeze, in TIME_ZONE (frozen_until is the moment
    after it)."""
    return day_ending_at(member.frozen_until)


def misqualified_by_tier(ranking: Ranking):
    """Each tier with the members whose lifetime points qualify for it but who hold
    another qualified tier."""
    for tier, low, high in ranking.bands():
        band = Member.objects.exclude(qualified_tier=tier.pk)  # a new tier (no pk): all
        if low is not None:
            band = band.filter(lifetime_points__gte=low)
        if high is not None:
            band = band.filter(lifetime_points__lt=high)
        yield tier, band


def members_per_tier(ranking: Ranking) -> list[dict]:
    """The dashboard's chart: members by effective tier, and how many of them are
    degraded below their qualified tier; merged (closed) accounts are no members any
    more. One grouped scan of the member table."""
    # Below the qualified tier, by rank: a status match lifts a member above it, and
    # degradation may still take them below it (down to the matched tier).
    below_qualified = reduce(
        operator.or_,
        (
            Q(qualified_tier=tier.pk, effective_tier__in=[t.pk for t in ranking.tiers[:rank]])
            for rank, tier in enumerate(ranking.tiers)
        ),
    )
    counts = {
        row["effective_tier"]: row
        for row in Member.objects.filter(merged_into=None)
        .order_by()
        .values("effective_tier")
        .annotate(
            members=Count("pk"),
            degraded=Count("pk", filter=below_qualified),
        )
    }
    rows = []
    for tier in ranking.tiers:
        row = counts.get(tier.pk, {"members": 0, "degraded": 0})
        rows.append({"tier": tier, "members": row["members"], "degraded": row["degraded"]})
    return rows


def closest_to_next_tier(ranking: Ranking, *, limit: int = 10) -> list[tuple[Member, Tier, int]]:
    """Members with the fewest lifetime points left to their next tier:
    [(member, next tier, points to go)]. One short index scan per tier. A member who
    already holds that tier or a higher one (a status match) is not offered it, nor is
    a closed or erased account (it earns nothing more)."""
    found = []
    for tier, low, high in ranking.bands():
        if high is None:
            continue
        next_tier = ranking.next_above(tier.pk)
        held = ranking.tiers[ranking.rank[next_tier.pk] :]
        band = Member.objects.filter(
            lifetime_points__lt=high, merged_into=None, erased_at=None
        ).exclude(effective_tier__in=held)
        if low is not None:
            band = band.filter(lifetime_points__gte=low)
        # One direction, as the (lifetime points, id) index reads: the ties at 0 points
        # of a million members are not read and sorted to choose ten.
        for member in band.order_by("-lifetime_points", "-pk")[:limit]:
            found.append((member, next_tier, high - member.lifetime_points))
    return sorted(found, key=lambda row: row[2])[:limit]


def members_at_risk(policy, ranking: Ranking, now, *, days: int) -> list:
    """Members whose effective tier the degradation job lowers within `days` unless
    they buy (D2), overdue ones included: those whose step has passed but whom the daily
    job has not moved yet. One queryset per step, each a range of the
    member_inactive_since index, so the soonest of each come straight from the index."""
    if not policy.enabled:
        return []
    # An erased account is still degraded, but nobody can win it back: not listed.
    members = Member.objects.filter(erased_at=None).annotate(inactive_since=inactive_since())
    until = within_days(now, days)
    return [
        members.filter(
            qualified_tier=qualified,
            inactive_since__lt=period_start(until, inactivity),
            effective_tier__in=higher,
        ).exclude(held(until, period_start(until, inactivity), higher))
        for qualified, _, inactivity, higher in degradation_steps(policy, ranking)
    ]


def at_risk(policy, ranking: Ranking, now, *, days: int, limit: int, cap: int) -> tuple[int, list]:
    """members_at_risk as a page shows it: how many (counted up to `cap` + 1) and the
    `limit` soonest, overdue first, as [(member, when, tier)] (next_degradation). The
    soonest of each step are enough: among members nothing holds, inactivity orders
    the dates (the index gives them); a freeze or a status match moves a member's date
    later, so those, fewer, are ordered by the day their hold lets them drop."""
    steps = members_at_risk(policy, ranking, now, days=days)
    if not steps:
        return 0, []
    soonest = {}
    for (_, _, inactivity, higher), step in zip(
        degradation_steps(policy, ranking), steps, strict=True
    ):
        step = step.select_related("effective_tier")
        matched = Q(granted_tier__in=higher)
        frozen = Q(frozen_until__gt=F("inactive_since"))  # a freeze restarts the clock
        free = step.exclude(matched).filter(Q(frozen_until=None) | ~frozen)
        held_back = step.filter(matched | frozen)  # read by the member_held index
        for member in [
            *free.order_by("inactive_since")[:limit],
            *held_back.order_by(drop_day(inactivity, higher), "pk")[:limit],
        ]:
            soonest[member.pk] = member
    drops = (
        (member, next_degradation(member, policy, ranking, now)) for member in soonest.values()
    )
    rows = sorted(
        ((member, *drop) for member, drop in drops if drop),
        key=lambda row: (row[1], row[0].pk),
    )
    count = reduce(operator.or_, steps).order_by()[: cap + 1].count()
    return count, rows[:limit]


def drop_day(inactivity, higher):
    """drop_day_of a held member's step of `inactivity` to a tier below `higher`, as
    next_degradation reads it (to the day: ties within a day are sorted there): the
    inactivity counted from the end of a freeze, and not before a status match to one
    of `higher` has run its last day."""
    since = Greatest("inactive_since", Coalesce("frozen_until", "inactive_since"))
    # period_end's day: the local day inactivity started, `inactivity` days on.
    inactive_day = Cast(
        ExpressionWrapper(TruncDate(since) + inactivity, output_field=DateTimeField()),
        DateField(),
    )
    # The match's last day: it holds to the end of that day.
    match_day = Case(When(granted_tier__in=higher, then=F("granted_until")), default=inactive_day)
    return Greatest(inactive_day, match_day)


def steps_ahead(member: Member, policy, ranking: Ranking) -> list[tuple]:
    """The degradation steps below the member's effective tier, soonest first, as
    [(when due, rank, tier)] (D2, as the job reads them): counted from the last purchase
    or the end of a freeze, and not before a status match to a tier above has run its
    last day. Empty when degradation is off."""
    if not policy.enabled:
        return []
    effective, since = ranking.rank[member.effective_tier_id], inactive_since_of(member)
    if member.frozen_until:  # the clock restarts when a freeze ends
        since = max(since, member.frozen_until)
    granted = member.granted_tier_id  # holds the steps below it until its last day ends
    grant_ends = end_of(member.granted_until) if granted else None
    return sorted(
        (
            max(period_end(since, inactivity), grant_ends)
            if granted and ranking.higher(granted, tier.pk)
            else period_end(since, inactivity),
            ranking.rank[tier.pk],
            tier,
        )
        for qualified, tier, inactivity, _ in degradation_steps(policy, ranking)
        if qualified.pk == member.qualified_tier_id and ranking.rank[tier.pk] < effective
    )


def lowest(steps) -> Tier:
    return min(steps, key=lambda step: step[1])[2]


def next_degradation(member: Member, policy, ranking: Ranking, now) -> tuple | None:
    """(when, tier): the next time the degradation job would lower this member's
    effective tier without a purchase, and the tier it would give (D2); None when it
    never would. Once its day (drop_day_of) is today or past, tonight's run applies it
    with every step whose day has come (the lowest tier reached). Show it with
    `drop_time`."""
    ahead = steps_ahead(member, policy, ranking)
    if not ahead:
        return None
    when = ahead[0][0]
    by = max(when, steps_due_tonight(now)) if drop_day_of(when) <= timezone.localdate(now) else when
    return when, lowest(step for step in ahead if step[0] <= by)


def inactivity_leaves(member: Member, policy, ranking: Ranking, due) -> int:
    """D2 for one member (in memory): the effective tier id their inactivity leaves them
    at by `due` (the steps due by then; a run's are steps_due_by), from the effective
    tier they hold: the lowest tier of the steps due, or the tier they hold when none
    is. The one reading of D2 for a member: a purchase's restoration, a member moved by
    new thresholds or by a status match's end, the expiry forecasts."""
    due_steps = [step for step in steps_ahead(member, policy, ranking) if step[0] <= due]
    return lowest(due_steps).pk if due_steps else member.effective_tier_id


def inactive_since_of(member: Member):
    """inactive_since() of a member row (D2)."""
    return member.last_purchase_at or member.joined_at


TONIGHT = "at tonight's run"


def drop_time(when, now) -> str:
    """How staff read a drop due at `when`: "on 5 Dec 2026" (drop_day_of), or "at
    tonight's run" once that day is today or past (the daily job applies every step due
    by the time it runs)."""
    day = drop_day_of(when)
    if day <= timezone.localdate(now):
        return TONIGHT
    return f"on {date_format(day, 'j M Y')}"


def lock_tiers() -> list[Tier]:
    """The tiers, locked until the transaction ends, in threshold order. Taken by the
    recalculation (T3) and by a marketer confirming a threshold, so that each waits for
    the other and reads the thresholds saved last. FOR NO KEY UPDATE: the members'
    references to the tiers (checked FOR KEY SHARE as a purchase, an enrolment or a
    degradation writes them) never wait for it."""
    return list(Tier.objects.select_for_update(no_key=True).order_by("threshold"))


def what_keeps(tier: Tier):
    """What keeps a tier: how many members, history rows, rewards and grants name it
    (core.kept.named_by), and each campaign limited to it, which would otherwise be left
    limited to none: to every tier (P3)."""
    for relation in tier._meta.get_fields(include_hidden=True):
        if isinstance(relation, models.ForeignObjectRel) and relation.many_to_many:
            for holder in relation.related_model.objects.filter(**{relation.field.name: tier}):
                kind = holder._meta.verbose_name.capitalize()
                yield f"{kind} “{holder}” is limited to {tier.name}: untick it there first"
    yield from named_by(tier)


def degradation_instants(runs) -> list[datetime]:
    """The instants degradation runs (JobRun rows) were made for: a run's key is its
    instant, whenever its row was created (a catch-up creates its nights' rows on the
    day it runs them)."""
    return [datetime.fromisoformat(key) for key in runs.values_list("key", flat=True)]


# After downtime, the nights missed are run first, at most this many.
CATCH_UP_NIGHTS = 31


def nights_missed(now) -> list[datetime]:
    """The starts of the days between the last degradation run and `now`'s day, both
    left out, oldest first: the nights whose run did not happen (at most
    CATCH_UP_NIGHTS). None before a first run. The last run is the latest instant a
    run was made for (its key), not the latest row: a catch-up creates the rows of the
    nights it runs on the day it runs them, and one cut short (a worker killed, the
    database away) must leave the nights after it missed, for the next run."""
    # Among the rows created last: a catch-up creates at most CATCH_UP_NIGHTS.
    latest = JobRun.objects.filter(job="degradation").order_by("-started_at", "-pk")
    instants = degradation_instants(latest[: 2 * CATCH_UP_NIGHTS])
    if not instants:
        return []
    last = max(instants)
    today = timezone.localdate(now)
    first = max(timezone.localdate(last), today - timedelta(days=CATCH_UP_NIGHTS + 1))
    return [end_of(first + timedelta(days=n)) for n in range((today - first).days - 1)]


def nights_not_run_for(member_id: int, now) -> list[datetime]:
    """The instants of the degradation runs due before `now`'s day that have not reached
    this member, oldest first: the nights missed, and the runs left unfinished with the
    member's chunk not done (its message lost with a broker that restarted)."""
    unfinished = JobChunk.objects.filter(
        run__job="degradation",
        run__finished_at=None,
        done_at=None,
        first_id__lte=member_id,
        last_id__gte=member_id,
    )
    runs = degradation_instants(JobRun.objects.filter(chunks__in=unfinished))
    return sorted({*nights_missed(now), *(run for run in runs if run < steps_due_by(now))})
