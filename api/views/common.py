"""What the views share: finding what a request names (404), the member's summary, and
the problem responses every operation may give, for the schema."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from api.errors import PROBLEM
from api.serializers import MemberSummary, Problem
from members.models import Member
from points.selectors import next_cutoff, points_at_stake, programme, summary_of
from tiers.selectors import next_degradation


def validated(serializer_class, request) -> dict:
    """The request's body checked on its own: a 400 naming every wrong field."""
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


def member_or_404(code: str) -> Member:
    if "\x00" in code:  # in a path (%00): no code has one, and PostgreSQL cannot look
        raise Http404("No Member matches the given query.")
    return get_object_or_404(Member, external_id=code)


def _tier(tier):
    return tier and {"code": tier.code, "name": tier.name, "multiplier": tier.multiplier}


def member_summary(member: Member, *, now=None) -> dict:
    """The member as GET /members/{code} shows it, serialized: of the row as given, so
    read it again after a write."""
    return MemberSummary(_summary(member, now=now)).data


def _summary(member: Member, *, now=None) -> dict:
    """GET /members/{code} of a member row just read: points_summary, with when the
    member next drops a tier (D2) and what expires at the next cutoff (E2). The tiers and
    policies come from the cached programme: a handful of queries in all."""
    now = now or timezone.now()
    plan = programme()
    summary = summary_of(member, plan.ranking, now=now)
    drop = next_degradation(member, plan.degradation, plan.ranking, now)
    cutoff = next_cutoff(plan.expiry, timezone.localdate(now))
    expires = cutoff and plan.ranking.by_pk[member.effective_tier_id].points_expire
    at_stake = expires and sum(  # one row at most: the member's, when points are at stake
        points_at_stake(cutoff, first_id=member.pk, last_id=member.pk).values_list(
            "at_stake", flat=True
        )
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
    """The problem+json responses of an operation, for drf-spectacular: those it names,
    and those of every operation (no key, an Accept it cannot answer, over the rate)."""
    described = {
        400: "Input wrong on its own, naming each field",
        401: "No valid API key",
        404: "Unknown member, reward or definition",
        406: "The Accept header allows no JSON",
        409: "The external_id was used with other content",
        415: "The body is not application/json",
        422: "A rule refused it",
        429: "Over the key's rate; see Retry-After",
    }
    return {
        (status, PROBLEM): OpenApiResponse(response=Problem, description=described[status])
        for status in sorted({401, 406, 429, *statuses})
    }


class UnknownPath(APIView):
    """Any other path under /api/v1/ (`redemptions/x/cancel`, `members/`): a 404 problem,
    whatever the method, never Django's HTML page. Not in the schema."""

    authentication_classes, permission_classes, throttle_classes = [], [AllowAny], []
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound("No such path in the API: see /api/v1/docs/.")
