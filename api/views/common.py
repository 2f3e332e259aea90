"""What the views share: finding what a request names (404), the member's summary, and
the problem responses every operation may give, for the schema; and the views of no
resource (the schema itself, any other path)."""

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, OperationalError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from api.errors import PROBLEM, Unknown
from api.serializers import MemberSummary, Problem, checked, rendered
from core.db import Compiled, retryable
from core.ids import canonical_id
from members.models import Member
from members.selectors import by_code
from points.selectors import (
    Programme,
    balances_and_stake,
    programme,
    summary_of,
)
from tiers.models import ProgrammeVersion
from tiers.selectors import drop_day_of, next_degradation


def validated(serializer_class, request) -> dict:
    """The request's body checked on its own: a 400 naming every wrong field."""
    return checked(serializer_class, request.data)


def for_member(code: str, write, *, tries: int = 3):
    """write(member, programme) for the member a customer code names, made again (the
    one refused wrote nothing) when:
    - a merge committed between the look-up and the write closed the account found,
      and the service refused it ("merged"): the code names the survivor by then;
    - PostgreSQL aborted it to break a deadlock with another writer of the same members
      (a referral paid while the referrer is merged into its friend, say)."""
    for attempt in range(1, tries + 1):
        try:
            return write(*member_and_programme(code, field="member"))
        except ValidationError as refused:
            if getattr(refused, "code", None) != "merged" or attempt == tries:
                raise
        except OperationalError as aborted:
            if not retryable(aborted) or attempt == tries:
                raise


def member_or_404(code: str) -> Member:
    return shown_member_and_programme(code)[0]


def shown_member_and_programme(code: str) -> tuple[Member, Programme]:
    """A member to show (the GETs): none for an erased account, whose ERASED- code (a
    voucher named its holder) led back to what staff wrote of the customer. Writes
    still find it: a return takes its points back, a purchase is refused saying why."""
    member, plan = member_and_programme(code)
    if member.erased_at:
        raise _no_member(code, None)
    return member, plan


def member_and_programme(code: str, *, field=None) -> tuple[Member, Programme]:
    """The member of a customer code (404 if none, naming the body's `field` that gave
    it) and the programme, in one prepared statement: every request names a member. A
    merged account's code names the member it was merged into (members.selectors.by_code).
    A code from a path is read as every id is (core.ids: "Café-1" in either form)."""
    if "\x00" in code:  # in a path (%00): no code has one, and PostgreSQL cannot look
        raise _no_member(code, field)
    code = canonical_id(code)
    row = _member_by_code.first(code=code)
    if row is None:
        raise _no_member(code, field)
    *values, version = row
    return Member.from_db(DEFAULT_DB_ALIAS, _MEMBER_FIELDS, values), programme(version)


def _no_member(code: str, field) -> NotFound:
    message = f"No member has the customer code {code}."
    return Unknown(field, message) if field else NotFound(message)


_MEMBER_FIELDS = [field.attname for field in Member._meta.concrete_fields]
_member_by_code = Compiled(
    lambda code: (
        by_code(code)
        .annotate(version=ProgrammeVersion.objects.values("token")[:1])
        .values_list(*_MEMBER_FIELDS, "version")
    ),
    code="\x00",  # no customer code has one
)


def _tier(tier):
    return tier and {"code": tier.code, "name": tier.name, "multiplier": tier.multiplier}


def member_summary(member: Member, plan: Programme, *, now=None) -> dict:
    """The member as GET /members/{code} shows it, serialized: of the row as given, so
    read it again after a write."""
    return rendered(MemberSummary, summary(member, plan, now=now))


def summary(member: Member, plan: Programme, *, now=None) -> dict:
    """GET /members/{code} of a member row just read: points_summary, with when the
    member next drops a tier (D2) and what expires at the next cutoff (E2). The tiers and
    policies come from the cached programme: one query more."""
    now = now or timezone.now()
    figures, cutoff, at_stake = balances_and_stake(member, plan, now=now)
    summary = summary_of(member, plan.ranking, figures=figures)
    drop = next_degradation(member, plan.degradation, plan.ranking, now)
    return {
        "external_id": member.external_id,
        "available": summary["available"],
        "pending": summary["pending"],
        "lifetime": summary["lifetime"],
        "qualified_tier": _tier(summary["qualified_tier"]),
        "effective_tier": _tier(summary["effective_tier"]),
        "next_tier": _tier(summary["next_tier"]),
        "points_to_next_tier": summary["points_to_next_tier"],
        "degrades_on": drop_day_of(drop[0]) if drop else None,
        "next_expiry": {"cutoff": cutoff, "points": at_stake} if at_stake else None,
    }


# The path's {code}, described for the docs and the generated clients.
MEMBER_CODE = OpenApiParameter(
    "code",
    str,
    OpenApiParameter.PATH,
    description="The member's customer code (`external_id`); a merged account's code "
    "names the account it was merged into.",
)
VOUCHER_CODE = OpenApiParameter(
    "code",
    str,
    OpenApiParameter.PATH,
    description="The voucher's code as the customer gives it: any case, dashes or not.",
)


def written(result, repeat="An exact repeat of an earlier call: its first answer again.") -> dict:
    """The two answers of an idempotent write (P8), for drf-spectacular: `repeat`
    describes the 200."""
    return {
        201: OpenApiResponse(result, description="Done: the first call with this external_id."),
        200: OpenApiResponse(result, description=repeat),
    }


def problems(*statuses: int) -> dict:
    """The problem+json responses of an operation, for drf-spectacular: those it names,
    and those of every operation (no key, an Accept it cannot answer, over the rate, the
    database away or a member held too long)."""
    described = {
        400: "Input wrong on its own, naming each field",
        401: "No valid API key",
        404: "Unknown member, reward, definition, redemption or voucher code",
        406: "The Accept header allows no JSON",
        409: "The external_id was used with other content",
        415: "The body is not application/json",
        422: "A rule refused it",
        429: "Over the key's rate; see Retry-After",
        503: "The database did not answer in time; send the same request again after Retry-After",
    }
    return {
        (status, PROBLEM): OpenApiResponse(response=Problem, description=described[status])
        for status in sorted({401, 406, 429, 503, *statuses})
    }


def retry_after_declared(result, generator, request, public):
    """drf-spectacular's post-processing hook: every 429 and 503 declares its Retry-After
    header, the seconds to wait (api.throttling, core.unavailable), for the generated
    clients of the tills that wait it out."""
    waits = {
        "429": "Seconds until the key's next window starts: a request then is counted in it.",
        "503": "Seconds to wait before sending the same request again.",
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, description in waits.items():
                answer = operation.get("responses", {}).get(status)
                if answer is not None:
                    answer.setdefault("headers", {})["Retry-After"] = {
                        "description": description,
                        "schema": {"type": "integer", "minimum": 1},
                        "required": True,
                    }
    return result


class UnknownPath(APIView):
    """Any other path under /api/v1/ (`redemptions/x/cancel`, `members/`): a 404 problem,
    whatever the method, never Django's HTML page. Not in the schema."""

    authentication_classes, permission_classes, throttle_classes = [], [AllowAny], []
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound("No such path in the API: see /api/v1/docs/.")


class Schema(SpectacularAPIView):
    """The schema in YAML, or in JSON for `Accept: application/json` or `?format=json`,
    the way client generators and drf-spectacular's own documentation ask for it
    (elsewhere in the API, `?format=` chooses nothing: URL_FORMAT_OVERRIDE)."""

    def get_format_suffix(self, **kwargs):
        return self.request.query_params.get("format") or None
