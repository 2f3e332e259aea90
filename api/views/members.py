"""Members: enrolment and what a till shows about a member."""

from django.contrib.admin.models import ADDITION
from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.history import log_api_change
from api.pagination import LedgerPage
from api.serializers import CatalogueItemOut, Enrolment, LedgerEntryOut, MemberSummary
from api.views.common import (
    MEMBER_CODE,
    member_and_programme,
    member_or_404,
    member_summary,
    problems,
    shown_member_and_programme,
    validated,
    written,
)
from core.refusals import CONFLICT
from members.models import Member
from members.selectors import by_code
from members.services import enroll_member
from points.models import LedgerEntry
from points.selectors import programme
from rewards.selectors import catalogue


def enrolled_with(member: Member, given: dict) -> dict:
    """What a member was enrolled with, as an Enrolment gives it: a repeat is the same.
    The referrer counts as the same when `given` names it by a code merged into it
    since, or merged into the same member (members.selectors.by_code); once erased, it
    has no code left to compare, and any code given counts as its own."""
    referrer = member.referred_by.external_id if member.referred_by_id else ""
    if referrer and given["referred_by"] and referrer != given["referred_by"]:
        named = by_code(given["referred_by"]).values("pk")
        if member.referred_by.erased_at or by_code(referrer).filter(pk__in=named).exists():
            referrer = given["referred_by"]
    return {
        "external_id": member.external_id,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "birth_date": member.birth_date,
        "referred_by": referrer,
    }


class Members(APIView):
    @extend_schema(
        operation_id="enrol_member",
        request=Enrolment,
        responses={
            **written(
                MemberSummary,
                "An exact repeat: the member as GET /members/{code} shows "
                "them now (the account kept, if merged since).",
            ),
            **problems(400, 404, 409, 415, 422),
        },
        description="Enrols a member in the entry tier, with the programme's welcome points "
        "if it gives any. The same again answers 200; the same customer code with other "
        "data, 409; a `referred_by` that names no member, 404; the member itself, 422.",
    )
    def post(self, request):
        fields = validated(Enrolment, request)
        try:
            with transaction.atomic():
                member = enroll_member(**fields, by=request.user)
                log_api_change(request.auth, member, "Enrolled", action_flag=ADDITION)
        except ValidationError:
            member = (
                Member.objects.filter(external_id=fields["external_id"])
                .select_related("referred_by")
                .first()
            )
            if member is None:
                raise
            if enrolled_with(member, fields) != fields:
                raise ValidationError(
                    {
                        "external_id": ValidationError(
                            f"{member.external_id} is enrolled with other data.", code=CONFLICT
                        )
                    }
                ) from None
            # The same again: the member the code names now (a merged account's survivor).
            return Response(member_summary(*member_and_programme(member.external_id)), status=200)
        return Response(member_summary(member, programme()), status=201)


class MemberDetail(APIView):
    @extend_schema(
        operation_id="get_member",
        parameters=[MEMBER_CODE],
        responses={200: MemberSummary, **problems(404)},
        description="Balances, tiers, the way to the next tier, when the member drops a "
        "tier without a purchase, and what expires at the next cutoff.",
    )
    def get(self, request, code):
        return Response(member_summary(*shown_member_and_programme(code)))


class MemberLedger(ListAPIView):
    serializer_class = LedgerEntryOut
    pagination_class = LedgerPage

    @extend_schema(
        operation_id="member_ledger",
        parameters=[MEMBER_CODE],
        responses={200: LedgerEntryOut, **problems(400, 404)},
        description="The member's ledger entries, newest first, 50 a page: follow `next` "
        "for older ones.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        member = member_or_404(self.kwargs["code"])
        return LedgerEntry.objects.filter(member=member).select_related("definition", "transaction")


class MemberRewards(APIView):
    @extend_schema(
        operation_id="member_rewards",
        parameters=[MEMBER_CODE],
        responses={200: CatalogueItemOut(many=True), **problems(404)},
        description="The whole catalogue: each reward redeemable now, or locked with the reason.",
    )
    def get(self, request, code):
        return Response(CatalogueItemOut(catalogue(member_or_404(code)), many=True).data)
