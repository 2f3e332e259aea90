from django.core.paginator import EmptyPage, Paginator
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

    def validate_number(self, number):
        """A page past the last (an old link, a typed address: page 500 of a list the
        cap stops at 11) is the last page, as Paginator.get_page gives it; not Django
        admin's bare "?e=1", which drops the search and says nothing of why."""
        try:
            return super().validate_number(number)
        except EmptyPage:
            if int(number) > 1:
                return self.num_pages
            raise


def with_count(queryset, count: int):
    """The queryset, counted already (up to the cap + 1, as CappedPaginator counts): a
    list that knows a cheaper way to count its rows than a walk to the cap says so."""
    queryset.capped_count = count
    return queryset
