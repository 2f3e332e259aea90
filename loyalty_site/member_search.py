"""How a member search's page is read, newest first, at a million members: a speed
mechanism beside the member list's search (its rule, the fields and their prefixes,
is MemberAdmin's search_fields; the order stays newest first either way).

PostgreSQL reads "newest first" by walking the id index back from the newest member
until the page is full, which is quick when the matches are spread among the members
(a first name, a letter) and very slow when they are all old: a customer code's start,
"S-0001", matches 10,000 members enrolled years ago, and the walk passed the 1,280,000
newer ones first (1.1 s a page; the picker asks at each key typed). When the newest
members hold too few matches for a page, the matches are read from the search indexes
and sorted instead (5 ms for those 10,000)."""

from django.contrib.admin.views.main import ORDER_VAR
from django.db.models import F, Max, OuterRef, Subquery, Value

from loyalty_site.checked_admin import OfferedSortsOnly
from members.models import Member
from tiers.models import Tier

# The newest members a walk may pass before the page is full: about 15 ms to look at.
WINDOW = 20_000
# The most matches sorted: more (most of the members, all but the newest) are read by
# the walk, which then passes fewer than it would sort.
MOST_SORTED = 200_000


def newest_first(matches, per_page: int) -> list:
    """The order for a search's `matches` (a queryset): "-pk", walked from the newest,
    when the WINDOW newest members hold a page of them; else the same order by an
    expression no index gives, so that PostgreSQL reads the matches from the search
    indexes and sorts them."""
    newest = Member.objects.aggregate(newest=Max("pk"))["newest"]
    if newest is None:
        return ["-pk"]
    recent = matches.filter(pk__gt=newest - WINDOW).order_by().values("pk")[:per_page]
    if recent.count() >= per_page:
        return ["-pk"]
    if matches.order_by().values("pk")[:MOST_SORTED].count() == MOST_SORTED:
        return ["-pk"]  # so many that sorting them costs more than the walk past the rest
    return [(F("pk") + Value(0)).desc()]


def with_tier_names(members):
    """The members with the names of their tiers (`effective_tier_name`,
    `qualified_tier_name`), read for the page's rows once they are chosen, instead of
    joined: a join led PostgreSQL astray on a sorted read (the tiers table, too small to
    be analysed, taken for one row: 350 ms)."""
    return members.select_related(None).annotate(
        effective_tier_name=_tier_name("effective_tier"),
        qualified_tier_name=_tier_name("qualified_tier"),
    )


def _tier_name(field: str) -> Subquery:
    return Subquery(Tier.objects.filter(pk=OuterRef(field)).values("name")[:1])


class MemberList(OfferedSortsOnly):
    """The member list: a search's page in its own order (newest first) unless a column
    is chosen."""

    def get_queryset(self, request, exclude_parameters=None):
        found = with_tier_names(super().get_queryset(request, exclude_parameters))
        if self.query and ORDER_VAR not in self.params:
            return found.order_by(*newest_first(found, self.list_per_page))
        return found
