"""The ledger's pages (GET /members/{code}/ledger): newest first, by a cursor that names
the last entry read, so that following `next` to the end reads every entry once, even
while entries are written.

DRF's CursorPagination places its cursor by the first ordering field alone (the time an
entry was issued) and counts the entries of that moment already read as an offset. Those
moments are shared (a purchase and its tier-up bonus; a till's actions sent with one
time), and an entry written meanwhile with an older time (a purchase a till sends when
back online) moved the offset: the next page repeated an entry already read. Here the
cursor is the entry's time and id, which no other entry shares: a page starts after
that entry, whatever was written since."""

from base64 import b64decode
from datetime import UTC

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as InvalidInput
from rest_framework.pagination import CursorPagination, _reverse_ordering

SEPARATOR = "|"  # between the time and the id in a cursor's position
LARGEST_ID = 2**63 - 1


class LedgerPage(CursorPagination):
    """Newest first, by a cursor: a page costs the same at the millionth entry."""

    ordering = ("-issued_at", "-id")
    page_size = 50
    cursor_query_description = (
        "Where the page starts: the cursor of a `next` or `previous` link (simplest, GET "
        "the link as it is). None: the newest entries."
    )

    def _get_position_from_instance(self, instance, ordering):
        return f"{instance.issued_at.isoformat()}{SEPARATOR}{instance.pk}"

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's, but the position filters by (issued_at, id) together. The links work
        as DRF's do: each entry's position is its own, so they never need an offset
        (one from a cursor given before this rule is still followed)."""
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        offset, reverse, current_position = self.cursor or (0, False, None)

        ordering = _reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*ordering)
        if current_position is not None:
            queryset = queryset.filter(_after(current_position, older=not reverse))

        results = list(queryset[offset : offset + self.page_size + 1])
        self.page = list(results[: self.page_size])
        following = None
        if len(results) > len(self.page):
            following = self._get_position_from_instance(results[-1], self.ordering)
        if reverse:
            self.page = list(reversed(self.page))
            self.has_next = current_position is not None or offset > 0
            self.has_previous = following is not None
            self.next_position, self.previous_position = current_position, following
        else:
            self.has_next = following is not None
            self.has_previous = current_position is not None or offset > 0
            self.next_position, self.previous_position = following, current_position
        return self.page

    def get_paginated_response_schema(self, schema):
        """DRF's, but both links are always in the page (null at either end), and the
        examples are links of this list."""
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["next", "previous", "results"]
        link = "https://loyalty.example.com/api/v1/members/M-00001/ledger?cursor="
        for name, cursor, what in (
            ("next", "cD0yMDI2LTExLTE5VDE2JTNBMTclM0EwMCUyQjAwJTNBMDAlN0M0Mg%3D%3D", "older"),
            ("previous", "cj0xJnA9MjAyNi0xMS0yMVQwOSUzQTAyJTNBMDAlMkIwMCUzQTAwJTdDNDg%3D", "newer"),
        ):
            page["properties"][name] = {
                "type": ["string", "null"],  # OpenAPI 3.1's null (3.0's nullable is gone)
                "format": "uri",
                "example": f"{link}{cursor}",
                "description": f"The page of {what} entries: GET it as it is (its `cursor` "
                "is that page's), or null when there is none.",
            }
        return page

    def decode_cursor(self, request):
        """A cursor the API did not give is input wrong on its own (400 naming it), not
        an unknown page (DRF's 404) nor a time the database refuses."""
        try:
            encoded = request.query_params.get(self.cursor_query_param)
            if encoded is not None:  # DRF's decoding drops what is not base64: "%%%" is ""
                b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
            if cursor and cursor.position is not None:
                _position(cursor.position)
        except (NotFound, ValueError, OverflowError):
            raise InvalidInput(
                {self.cursor_query_param: "Not a cursor of this list: follow the next link."}
            ) from None
        return cursor


def _position(position: str):
    """(issued_at, id) of a cursor's position; the id is None in a cursor given before
    positions named the entry (a time alone). ValueError when it is neither."""
    text, separator, pk = position.partition(SEPARATOR)
    moment = parse_datetime(text)
    if moment is None or moment.utcoffset() is None:
        raise ValueError(position)
    moment.astimezone(UTC)  # a time the database holds (not year 1 at +14:00)
    if not separator:
        return moment, None
    if not (pk.isascii() and pk.isdigit()) or not 0 < int(pk) <= LARGEST_ID:
        raise ValueError(position)
    return moment, int(pk)


def _after(position: str, *, older: bool) -> Q:
    """The entries beyond the position: older ones (next), or newer (previous). The
    range on the time alone comes first, for the index on (member, issued_at)."""
    moment, pk = _position(position)
    if pk is None:  # a cursor of a time alone: DRF's, its offset counts the rest
        return Q(issued_at__lt=moment) if older else Q(issued_at__gt=moment)
    if older:
        return Q(issued_at__lte=moment) & (Q(issued_at__lt=moment) | Q(id__lt=pk))
    return Q(issued_at__gte=moment) & (Q(issued_at__gt=moment) | Q(id__gt=pk))
