"""Why a member's figures are what they are, in words a CX agent reads to the customer
(DESIGN.md, "Member 360"): each ledger entry with the rule that made it, each tier
change with its cause, and the tier a member holds at a moment with the change that
brought it. Reads only; the member page shows them."""

from django.db.models import Case, DateTimeField, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core.days import day_ending_at
from members.models import Member, TierChange
from points.models import TIER_UP_BONUS, AwardedOn, LedgerEntry, Transaction

Kind = LedgerEntry.Kind
Reason = TierChange.Reason


def day(moment) -> str:
    """23 Jul 2026, in the programme's time zone."""
    return date_format(timezone.localtime(moment), "j M Y")


def days_without_purchase(since, until) -> int:
    """The whole days after the day of `since` and before the day of `until`, in the
    programme's calendar, as D2 counts them (tiers.selectors.period_end): the day of
    the last purchase is not one without a purchase, nor the day of the nightly run
    that applied the drop, only begun."""
    return (timezone.localdate(until) - timezone.localdate(since)).days - 1


def _by(user) -> str:
    return f" by {user}" if user else ""


# Ledger entries


def entry_explanation(entry: LedgerEntry) -> str:
    """The rule that made a ledger entry. Reads the entry's definition, staff user,
    transaction and the transaction's original: select them with the entry."""
    txn, definition = entry.transaction, entry.definition
    if entry.kind == Kind.EARN and txn and txn.kind == Transaction.Kind.PURCHASE:
        where = f" at {txn.store}" if txn.store else ""
        return f"Purchase {txn.external_id} of {txn.amount}{where}, earned at {entry.reason}"
    if entry.kind == Kind.EARN and txn:
        name = definition.name if definition else entry.reason
        return f"Action {txn.external_id}: {name}, {entry.points:,} points"
    if entry.kind == Kind.EARN and definition and definition.awarded_on == AwardedOn.ENROLMENT:
        return f"{definition.name}: given once on enrolment"
    if entry.kind == Kind.EARN and definition and definition.awarded_on == AwardedOn.REFERRAL:
        return f"{definition.name}: {entry.reason.removeprefix('Referral: ')}, paid once"
    if entry.kind == Kind.RETURN and txn and txn.original:
        original = txn.original
        return (
            f"Return {txn.external_id} of {txn.amount} of purchase {original.external_id} "
            f"({original.amount} on {day(original.occurred_at)}): takes back its points in "
            "proportion to what it earned"
        )
    if entry.kind == Kind.BONUS and definition and definition.handle == TIER_UP_BONUS:
        return f"{entry.reason}: the bonus for reaching the tier for the first time"
    if entry.kind == Kind.ADJUSTMENT:
        counts = "counts" if entry.counts_toward_tier else "does not count"
        how = f"Adjusted{_by(entry.created_by)}"
        if entry.batch_id:  # a point grant, one row of an imported file
            how = f"Granted{_by(entry.created_by)} in import {entry.batch_id}"
        approved = getattr(entry, "approved_by", None)  # ledger_lines: above a goodwill limit
        if approved:
            how += f", approved by {approved}"
        name = definition.name if definition else "Adjustment"
        return f"{how}: {entry.reason} ({name}; {counts} toward the tier)"
    if entry.kind == Kind.EXPIRY and txn:  # given back to a late return (late_returns)
        return (
            f"Block expiry at the end of {entry.cutoff:%-d %b %Y} given back: it had taken "
            f"the points that return {txn.external_id}, dated {day(txn.occurred_at)} and "
            "recorded after it, takes back, so they are not taken twice"
        )
    if entry.kind == Kind.EXPIRY:
        return (
            f"Block expiry at the end of {entry.cutoff:%-d %b %Y}: the points available then "
            "expired"
        )
    if entry.kind == Kind.MERGE:
        still_pending = entry.accrue_at > entry.issued_at
        pending = f", pending until {day(entry.accrue_at)}" if still_pending else ""
        return f"{entry.reason} (accounts merged{_by(entry.created_by)}{pending})"
    if entry.kind in (Kind.REDEMPTION, Kind.REFUND):
        return f"{entry.reason}{_by(entry.created_by)}"
    name = f"{definition.name}: " if definition and definition.name not in entry.reason else ""
    return f"{name}{entry.reason}{_by(entry.created_by)}"


# Tier history


def tier_history(member: Member, ranking, *, at=None, limit: int = 20) -> list[TierChange]:
    """The member's last tier changes (up to `at`, if given) in the order they were
    recorded, so that the top row is the tier then; each with its `explanation`, and
    `back_dated` when dated before the change recorded before it (an import of older
    purchases). Two queries."""
    # The member's purchases, and those of accounts merged into it by then (the last
    # purchase of a merge is the later of both); an account merged into another before
    # that one was merged into this member, from that later merge (M7). Two look-ups,
    # each down an index, not one for either: PostgreSQL planned that one as a scan of
    # every purchase and every member (1.1 s for a degraded member's page at 1,300,000
    # members), and priced it high enough to compile every page's query (30 ms).
    own = _last_purchase(member=OuterRef("member"))
    merged = _last_purchase(
        member__merged_into=OuterRef("member"),
        member__merged_into_at__lte=OuterRef("changed_at"),
    )
    changes = member.tier_changes.select_related(
        "from_tier", "to_tier", "qualified_tier", "created_by"
    ).annotate(
        # What a degradation counted from (D2): the last purchase before it.
        last_purchase=Case(
            When(
                reason=Reason.DEGRADATION,
                # The later of both; either may be none (Greatest gives none on SQLite).
                then=Greatest(Coalesce(own, merged), Coalesce(merged, own)),
            ),
            output_field=DateTimeField(),
        ),
    )
    if at is not None:
        changes = changes.filter(changed_at__lte=at)
    changes = list(changes.order_by("-pk")[: limit + 1])
    _with_lifetime_then(member, changes)
    for change, earlier in zip(changes, changes[1:], strict=False):
        change.back_dated = change.changed_at < earlier.changed_at
    for change in changes:
        change.explanation = change_explanation(change, member, ranking)
    return changes[:limit]


def _with_lifetime_then(member: Member, changes: list[TierChange]) -> None:
    """Each change's `lifetime_then`: the lifetime points the ledger gives at it (a
    threshold changed since is not the one the member reached then), that is the
    member's lifetime points (the ledger's cache) less those issued after it. One pass
    over the entries issued since the oldest change shown: a sum per change over all
    the entries before it took a corporate card's million entries 8 s a page."""
    if not changes:
        return
    since = LedgerEntry.objects.filter(
        member=member,
        counts_toward_tier=True,
        issued_at__gt=min(change.changed_at for change in changes),
    )
    after = since.aggregate(
        **{
            str(i): Sum("points", filter=Q(issued_at__gt=change.changed_at))
            for i, change in enumerate(changes)
        }
    )
    for i, change in enumerate(changes):
        change.lifetime_then = member.lifetime_points - (after[str(i)] or 0)


def _last_purchase(**whose) -> Subquery:
    """The time of the last purchase of `whose` before the tier change (OuterRef), among
    those recorded by then: a purchase dated before a degradation run but recorded after
    it (a till offline, a file imported the next morning) is not what the run counted."""
    purchases = Transaction.objects.filter(
        **whose,
        kind=Transaction.Kind.PURCHASE,
        occurred_at__lte=OuterRef("changed_at"),
        created_at__lte=OuterRef("changed_at"),
    )
    return Subquery(purchases.order_by("-occurred_at").values("occurred_at")[:1])


def change_explanation(change: TierChange, member: Member, ranking) -> str:
    """A tier change with its cause: "Gold since 23 Jul 2026: reached 3,000 lifetime
    points"; "Silver from 21 Jan 2027: 90 days without a purchase"."""
    to, qualified, when = change.to_tier, change.qualified_tier, day(change.changed_at)
    reason = change.reason
    if reason == Reason.JOINED:
        return f"{to} since {when}: joined the programme"
    if reason == Reason.DEGRADATION:
        since = change.last_purchase
        counted_from = since or member.joined_at
        after = f"last purchase {day(since)}" if since else "none since joining"
        freeze_end = change.frozen_until  # G6: the clock restarted when it ended
        if freeze_end and counted_from < freeze_end <= change.changed_at:
            counted_from = freeze_end
            last_frozen = date_format(day_ending_at(freeze_end), "j M Y")
            after = f"{after}; counted from the end of a freeze on {last_frozen}"
        days = days_without_purchase(counted_from, change.changed_at)
        return (
            f"{to} from {when}: {days:,} days without a purchase ({after}); "
            f"qualified for {qualified}, a purchase restores it"
        )
    if reason == Reason.RESTORATION and to != qualified:  # a late purchase (D3)
        return (
            f"{to} from {when}: a purchase restored {to}, as the days since it leave it; "
            f"qualified for {qualified}, a purchase restores it"
        )
    if reason == Reason.RESTORATION:
        return f"{to} again from {when}: a purchase restored the qualified tier"
    if reason == Reason.RULES_CHANGED and ranking.higher(qualified.pk, to.pk):
        # Qualified higher by the new thresholds, and kept lower by inactivity (T3, D2)
        return (
            f"{to} since {when}: the tier thresholds changed, qualifying for {qualified}; "
            f"kept at {to} by the days without a purchase, a purchase restores it"
        )
    if reason == Reason.RULES_CHANGED:
        return f"{to} since {when}: the tier thresholds changed"
    if reason == Reason.STATUS_MATCH:
        return _matched(change, qualified)
    if reason == Reason.STATUS_MATCH_ENDED:
        # The nightly job names no one; staff who end one early are named.
        early = f" early{_by(change.created_by)}" if change.created_by_id else ""
        return f"{to} from {when}: the status match ended{early}; the tier the rules give"
    if reason == Reason.OPENING_BALANCE:
        return f"{to} since {when}: opening balance brought from the previous programme"
    cause = {
        Reason.MANUAL: f"a manual adjustment{_by(change.created_by)}: ",
        Reason.MERGE: f"accounts merged{_by(change.created_by)}: ",
    }.get(reason, "")
    went_down = change.from_tier is not None and change.from_tier.threshold > to.threshold
    then = change.lifetime_then or 0  # tier_history's annotation
    if reason == Reason.MERGE and went_down:  # the closed account: its points left it
        return _moved_away(to, when, change.created_by)
    if reason == Reason.DOWNGRADE or went_down:
        cause = cause or "a return: "
        above = ranking.next_above(qualified.pk)
        if above is None:
            below = "a tier lower"
        elif then < above.threshold:
            below = f"lifetime points fell below {above.threshold:,}"
        else:  # the threshold was raised since: the one of then is not known
            below = f"lifetime points fell to {then:,}, below {above} as the thresholds were"
        return f"{to} since {when}: {cause}{below}"
    if to.threshold > qualified.threshold:  # a merged account's running status match
        return f"{to} since {when}: {cause}the status match carries on (qualified for {qualified})"
    if then >= qualified.threshold:
        reached = f"reached {qualified.threshold:,} lifetime points"
    else:  # the threshold was raised since (T3): what the member had then
        reached = f"reached {qualified} with {then:,} lifetime points, as the thresholds were"
    if to != qualified:  # qualified higher while degraded: the effective tier waits
        return (
            f"Qualified for {qualified} on {when} ({cause}{reached}); "
            f"{to} until a purchase restores it"
        )
    return f"{to} since {when}: {cause}{reached}"


def _matched(change: TierChange, qualified) -> str:
    return (
        f"{change.to_tier} from {day(change.changed_at)}: status match"
        f"{_by(change.created_by)}, with no bonus (qualified for {qualified})"
    )


def _moved_away(tier, when: str, by) -> str:
    return f"{tier} since {when}: merged into another account{_by(by)}, its points moved there"


def why_closed(member: Member) -> str | None:
    """Why a closed account holds its tier (M5): its merge, whether or not it moved the
    tier (an account at the entry tier already kept it). None for an open account."""
    if member.merged_into_id is None:
        return None
    return _moved_away(member.effective_tier, day(member.merged_at), member.merged_by)


def tier_explanation(history: list[TierChange], effective_tier) -> str:
    """Why the member holds `effective_tier` (as of the newest row of `history`, newest
    first): the change that brought it, the oldest of the changes since that left it
    there."""
    since = None
    for change in history:
        # Back to the change that brought the tier, while the qualified tier is the one
        # the member has now: a degradation's "a purchase restores it" is no longer true
        # once they qualify for no more (a return, a higher threshold). A status match
        # holds its tier whatever the points reach meanwhile.
        if change.to_tier_id != effective_tier.pk:
            break
        if change.qualified_tier_id != history[0].qualified_tier_id:
            # The match holds the member up only while they qualify for less: reached
            # by points since, the tier is theirs by the change that reached it.
            held_up = history[0].qualified_tier.threshold < effective_tier.threshold
            if change.reason == Reason.STATUS_MATCH and held_up:
                return _matched(change, history[0].qualified_tier)
            break
        since = change
    if since is None and history:  # as of a date, under thresholds changed since (T3)
        return (
            f"{effective_tier} by today's thresholds; the tier history shows "
            f"{history[0].to_tier} then, under the thresholds of the time"
        )
    if since is None:
        return f"{effective_tier}: no change recorded yet"
    return since.explanation
