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

from django.db.models import F, Max, Value

from members.models import Member

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
