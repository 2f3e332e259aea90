from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """Counts at most `cap` rows, so that a list of millions costs a short scan, not a
    full COUNT(*), on every page. Beyond the cap the list says "more than" and staff
    narrow it with the search or the filters (ten pages of 100 is as far as anyone
    reads)."""

    cap = 1_000

    @cached_property
    def count(self) -> int:
        if (counted := getattr(self.object_list, "capped_count", None)) is not None:
            return counted  # counted already, the way that fits the rows (with_count)
        # Unordered: the database stops at the cap instead of sorting every match first.
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


def with_count(queryset, count: int):
    """The queryset, counted already (up to the cap + 1, as CappedPaginator counts): a
    list that knows a cheaper way to count its rows than a walk to the cap says so."""
    queryset.capped_count = count
    return queryset
