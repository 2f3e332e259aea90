"""The CX Manager's member list, as PostgreSQL reads it at a million members: speed
mechanisms beside the list (MemberAdmin: its columns, filters, search and sorts are
the rules; the rows and their order are the same whichever way they are read).

- A search's page and its count: member_search.NewestFirst.
- One tier sorted by lifetime points: PostgreSQL could read it through either lifetime
  index, and chose by an estimate that assumes the tier's members spread evenly along
  the lifetime points. They are not: Bronze, sorted most first, was read through the
  index of every member by lifetime points, past every member of a higher tier (1.7 s
  a page at 1,300,000 members). The tier's filter is written as a range (`>= N` and
  `<= N`: the same members) and the sort led by the tier, which only the index of
  (tier, lifetime points, id) gives without sorting: with `= N`, PostgreSQL drops a sort
  key it knows to be constant, and both indexes fit again.
- One tier newest first, the same way from the index of (tier, id): the ids walked back
  passed every newer member of the other tiers (Silver: the 300,000 newest, all
  Bronze, 150 ms).
- Tier names: with_tier_names.
"""

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR
from django.db.models import OuterRef, Subquery

from core.paginator import CappedPaginator, with_count
from loyalty_site.checked_admin import OfferedSortsOnly
from loyalty_site.member_search import NewestFirst
from tiers.models import Tier

# The orders one tier's index gives (member_tier_lifetime, member_tier_newest).
SORTED_IN_TIER_OR_NEWEST = ("lifetime_points", "-lifetime_points", "-pk")


class TierFilter(admin.RelatedFieldListFilter):
    """The effective tier's filter: one tier, as a range (see above)."""

    def queryset(self, request, queryset):
        chosen = self.lookup_val or []
        if len(chosen) == 1 and chosen[0].isascii() and chosen[0].isdigit():
            tier = int(chosen[0])
            return queryset.filter(effective_tier__gte=tier, effective_tier__lte=tier)
        return super().queryset(request, queryset)


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
    return Subquery(Tier.objects.filter(pk=OuterRef(field)).order_by().values("name"))


class MemberList(OfferedSortsOnly):
    """The member list: a search's page in its own order (newest first) unless a column
    is chosen, and its own count; one tier newest first or sorted by lifetime points
    led by the tier."""

    def get_ordering(self, request, queryset):
        ordering = super().get_ordering(request, queryset)
        if ordering and ordering[0] in SORTED_IN_TIER_OR_NEWEST and self._one_tier():
            way = "-" if ordering[0].startswith("-") else ""
            return [f"{way}effective_tier_id", *ordering]
        return ordering

    def _one_tier(self) -> bool:
        return any(isinstance(f, TierFilter) and f.lookup_val for f in self.filter_specs)

    def get_queryset(self, request, exclude_parameters=None):
        found = with_tier_names(super().get_queryset(request, exclude_parameters))
        if not self.query:
            return found
        search = NewestFirst(found, self.list_per_page, cap=CappedPaginator.cap)
        if ORDER_VAR not in self.params:
            found = found.order_by(*search.order)
        return with_count(found, search.count)
