"""What the views share: finding what a request names (404), the member's summary, and
the problem responses every operation may give, for the schema."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse

from api.errors import PROBLEM
from api.serializers import MemberSummary, Problem
from members.models import Member
from points.models import ExpiryPolicy
from points.selectors import next_cutoff, points_at_stake, points_summary
from tiers.models import DegradationPolicy
from tiers.selectors import Ranking, next_degradation


def member_or_404(code: str) -> Member:
    return get_object_or_404(Member, external_id=code)


def _tier(tier):
    return tier and {"code": tier.code, "name": tier.name, "multiplier": tier.multiplier}


def member_summary(member: Member, *, now=None) -> dict:
    """The member as GET /members/{code} shows it, serialized."""
    return MemberSummary(_summary(member, now=now)).data


def _summary(member: Member, *, now=None) -> dict:
    """GET /members/{code}: points_summary, with when the member next drops a tier
    (D2) and what expires at the next cutoff (E2)."""
    now = now or timezone.now()
    summary = points_summary(member, now=now)
    member.refresh_from_db(fields=["qualified_tier", "effective_tier", "last_purchase_at"])
    drop = next_degradation(member, DegradationPolicy.current(), Ranking(), now)
    cutoff = next_cutoff(ExpiryPolicy.current(), timezone.localdate(now))
    at_stake = cutoff and (
        points_at_stake(cutoff, first_id=member.pk, last_id=member.pk)
        .values_list("at_stake", flat=True)
        .first()
    )
    return {
        "external_id": member.external_id,
        "available": summary["available"],
        "pending": summary["pending"],
        "lifetime": summary["lifetime"],
        "qualified_tier": _tier(summary["qualified_tier"]),
        "effective_tier": _tier(summary["effective_tier"]),
        "next_tier": _tier(summary["next_tier"]),
        "points_to_next_tier": summary["points_to_next_tier"],
        "degrades_on": timezone.localdate(max(drop[0], now)) if drop else None,
        "next_expiry": {"cutoff": cutoff, "points": at_stake} if at_stake else None,
    }


def problems(*statuses: int) -> dict:
    """The problem+json responses of an operation, for drf-spectacular."""
    described = {
        400: "Input wrong on its own, naming each field",
        401: "No valid API key",
        404: "Unknown member, reward or definition",
        409: "The external_id was used with other content",
        422: "A rule refused it",
        429: "Over the key's rate; see Retry-After",
    }
    return {
        (status, PROBLEM): OpenApiResponse(response=Problem, description=described[status])
        for status in (401, 429, *statuses)
    }
