"""A grants file as a staff user uploads it, for the tests of point grants: granted
through the service at a fixed time, what a file may write, a member's points."""

import io

from members.models import Member
from points.grant_rows import read_grants
from points.models import LedgerEntry
from points.services import import_grants
from tests.conftest import at, summary

HEADER = "external_id,member,points,reason,definition\n"
NOW = at("2026-03-10")


def grant(text, *, by, dry_run=False, header=HEADER, bom=False, batch=None):
    data = (("\ufeff" if bom else "") + header + text).encode()
    rows, errors = read_grants(io.BytesIO(data))
    return import_grants(rows, by=by, errors=errors, dry_run=dry_run, batch=batch, now=NOW)


def state():
    return (
        LedgerEntry.objects.count(),
        list(Member.objects.order_by("pk").values_list("points_balance", "lifetime_points")),
    )


def available(member):
    return summary(member, now=NOW)["available"]
