"""A members file as operations send it, for the tests of the members import:
imported through the service, and everything an import may write."""

import io

from members.models import Member, Notification, TierChange
from points.member_rows import read_members
from points.models import LedgerEntry
from points.services import import_members

HEADER = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime\n"
)


def run(text, *, dry_run=False, bom=False, header=HEADER, batch=None, on_chunk=None):
    data = (("\ufeff" if bom else "") + header + text).encode()
    rows, errors = read_members(io.BytesIO(data))
    return import_members(rows, errors=errors, dry_run=dry_run, batch=batch, on_chunk=on_chunk)


def state():
    """Everything an import may write."""
    return (
        list(
            Member.objects.order_by("pk").values_list(
                "external_id",
                "email",
                "first_name",
                "last_name",
                "phone",
                "joined_at",
                "birth_date",
                "points_balance",
                "lifetime_points",
                "qualified_tier__code",
                "effective_tier__code",
                "best_tier__code",
            )
        ),
        LedgerEntry.objects.count(),
        TierChange.objects.count(),
        Notification.objects.count(),
    )
