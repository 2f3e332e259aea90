"""How a member search's page is read and counted at a million members: a speed
mechanism beside the member list's search (its rule, the fields and their prefixes,
is MemberAdmin's search_fields; the order stays newest first, and the count exact up to
the list's cap, either way).

PostgreSQL reads "newest first" by walking the id index back from the newest member
until the page is full, which is quick when the matches are spread among the members
(a first name, a letter) and very slow when they are all old: a customer code's start,
"S-0001", matches 10,000 members enrolled years ago, and the walk passed the 1,280,000
newer ones first (1.1 s a page; the picker asks at each key typed). When the newest
members hold too few matches for a page, the matches are read from the search indexes
and sorted instead (5 ms for those 10,000).

The list's count (up to its cap, 1,000) had the same trouble the other way: a first
and last name ("Hugo Martin", one member in 170) was counted by walking the table until
1,001 matches were found, 170,000 members (170-300 ms), where the search indexes give
all 7,700 matches in 60. How those few matches spread among the newest members tells
which is cheaper."""

from django.db.models import F, Max, Value
from django.utils.functional import cached_property

from members.models import Member

# The newest members a walk may pass before the page is full: about 15 ms to look at.
WINDOW = 20_000
# The most matches sorted: more (most of the members, all but the newest) are read by
# the walk, which then passes fewer than it would sort.
MOST_SORTED = 200_000
# A match read from the search indexes costs as much as this many members walked past
# (8 µs and 1 µs at 1,300,000 members).
INDEXED_MATCH_COST = 8


class NewestFirst:
    """A search's `matches` (a queryset): `order`, newest first, as they are best read
    for a page of `per_page`; and `count`, up to `cap` + 1 (the list's paginator)."""

    def __init__(self, matches, per_page: int, *, cap: int | None = None):
        self.matches, self.cap = matches.order_by().values("pk"), cap
        self.newest = Member.objects.aggregate(newest=Max("pk"))["newest"] or 0
        recent = self.matches.filter(pk__gt=self.newest - WINDOW)
        self.in_window = recent[: per_page if cap is None else cap + 1].count()
        self.most = None if self.newest else 0  # the matches up to MOST_SORTED, if counted
        if self.in_window >= per_page or not self.newest:
            self.order = ["-pk"]  # the walk fills the page among the newest
            return
        self.most = self.matches[:MOST_SORTED].count()
        # So many that sorting them costs more than the walk past the rest: walked.
        walked = self.most == MOST_SORTED
        self.order = ["-pk"] if walked else [(F("pk") + Value(0)).desc()]

    @cached_property
    def count(self) -> int:
        over = self.cap + 1
        if self.in_window >= over or self.most == MOST_SORTED:
            return over
        if self.most is not None:
            return min(self.most, over)
        # Spread among the members as among the newest (the window holds a page): read
        # all from the indexes, or walk until `over` are found, whichever passes less.
        expected = self.in_window * self.newest / WINDOW
        walked = over * WINDOW / self.in_window
        counted = MOST_SORTED if expected * INDEXED_MATCH_COST < walked else over
        return min(self.matches[:counted].count(), over)
