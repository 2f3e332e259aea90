"""A return recorded after an expiry cutoff it is dated before (E2 with P4): that
cutoff expired the points the return takes back, so without a correction the member
would lose them twice (bought 100 on 5 Oct, 100 expired at 31 Oct, a return of 20 Oct
recorded on 2 Nov: -100, where recorded on time it leaves 0). The expiry gives back
what it took too much, cutoff by cutoff, oldest first: the smaller of what the return
still takes and what the cutoff expired (net of what it gave back before), so the
balance is what it would be had the return been recorded on time. Only the cutoffs
whose run found the purchase's points in the member's balance count: a purchase
recorded after a run, or merged in after its cutoff, was not expired by it. Nothing more
expires afterwards: a tier the return lowers then counts from its own date on."""

from datetime import date
from typing import TYPE_CHECKING

from django.db.models import Max, Q, Sum
from django.utils import timezone

from points.expiry_selectors import cutoff_instant
from points.explanations import day
from points.models import LedgerEntry
from points.services.posting import Movement

if TYPE_CHECKING:  # returns imports this module
    from points.services.returns import Purchase

Kind = LedgerEntry.Kind


def dated_before_its_expiry(member, at) -> bool:
    """Whether a return dated `at` may come before a cutoff that expired the member's
    points: `expired_through`, the last cutoff that took some, is on or after its day.
    Most returns are not, and cost no query."""
    return bool(member.expired_through and member.expired_through >= timezone.localdate(at))


class Expired:
    """What processed cutoffs expired of some members, read once per member and kept as
    it is given back: the returns of one write (one return, or an import's file) share
    it, so that two returns never give the same expired points back twice."""

    def __init__(self):
        # member id -> cutoff -> [points expired and not given back, its run's entry id]
        self._by_member: dict[int, dict[date, list]] = {}

    def read(self, returns) -> None:
        """One query for the members of `returns`, (member, dated) pairs, whose return
        may come before a cutoff that took their points and who were not read yet:
        what each cutoff from the return's day on took of them, net."""
        since: dict[int, date] = {}
        for member, at in returns:
            if member.pk not in self._by_member and dated_before_its_expiry(member, at):
                dated = timezone.localdate(at)
                since[member.pk] = min(dated, since.get(member.pk, dated))
        if not since:
            return
        rows = (
            LedgerEntry.objects.filter(
                kind=Kind.EXPIRY, member__in=since, cutoff__gte=min(since.values())
            )
            .values_list("member", "cutoff")
            .annotate(net=Sum("points"), ran=Max("pk", filter=Q(transaction=None)))
            .order_by("cutoff")
        )
        for member_id in since:
            self._by_member[member_id] = {}
        for member_id, cutoff, net, ran in rows:
            if net < 0:
                self._by_member[member_id][cutoff] = [-net, ran]

    def give_back(
        self, member, reversal: Movement, bought: "Purchase", *, external_id: str
    ) -> list[Movement]:
        """The expiry entries giving back what processed cutoffs took of the points the
        return `reversal` takes back of `bought` (read first). A cutoff counts the return
        as the expiry job would have: issued and available before its end (points still
        pending on the purchase then count at a later cutoff); and only if its run found
        the purchase's points in the member's balance: written after the purchase's
        earning (entries' ids grow, and both were written under the member's lock), and
        after its cutoff for a purchase merged in (no merge is made between a cutoff and
        its run)."""
        if reversal is None or bought.earned_id is None:
            return []
        if not dated_before_its_expiry(member, reversal.issued_at):
            return []
        self.read([(member, reversal.issued_at)])
        taken, moves = -reversal.points, []
        expired = self._by_member.get(member.pk, {})
        for cutoff in sorted(expired):
            end, (left, ran) = cutoff_instant(cutoff), expired[cutoff]
            found = bought.earned_id < ran and (bought.merged_at is None or bought.merged_at < end)
            if taken <= 0 or reversal.accrue_at >= end or not left or not found:
                continue
            given = min(taken, left)
            expired[cutoff][0] -= given
            taken -= given
            moves.append(
                _given_back(
                    cutoff, given, at=end, external_id=external_id, dated=reversal.issued_at
                )
            )
        return moves


def _given_back(cutoff: date, points: int, *, at, external_id: str, dated) -> Movement:
    """An expiry entry of plus `points` at the cutoff's end, as the expiry itself is
    counted: redeemable, never tier-counting, available at once."""
    return Movement(
        Kind.EXPIRY,
        points,
        None,
        False,
        True,
        at,
        at,
        f"Expiry of {cutoff:%d %B %Y} given back: return {external_id}, dated {day(dated)}, "
        "was recorded after it",
        cutoff=cutoff,
    )
