"""Vouchers (W5): a till checks a code and uses it, once. A use is idempotent on its
external_id: the first 201, an exact repeat 200 with the same body, the same id for
another voucher 409. An unknown code is a 404, counted against the key's rate like
every request, so codes cannot be tried by the million."""

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.history import log_api_change
from api.models import FirstAnswer
from api.serializers import VoucherOut, VoucherUseRequest, rendered
from api.views.common import VOUCHER_CODE, problems, validated, written
from rewards.models import Redemption
from rewards.selectors import voucher
from rewards.services import use_voucher

VOUCHER_USE = FirstAnswer.Kind.VOUCHER_USE


def voucher_or_404(code: str) -> Redemption:
    found = voucher(code)
    if found is None:
        raise Http404("No voucher has this code.")
    return found


class VoucherDetail(APIView):
    @extend_schema(
        operation_id="get_voucher",
        parameters=[VOUCHER_CODE],
        responses={200: VoucherOut, **problems(404)},
        description="A voucher by its code: the reward, its value, the member, and its "
        "status: valid, used, expired or cancelled.",
    )
    def get(self, request, code):
        return Response(rendered(VoucherOut, voucher_or_404(code)))


class UseVoucher(APIView):
    @extend_schema(
        operation_id="use_voucher",
        parameters=[VOUCHER_CODE],
        request=VoucherUseRequest,
        responses={**written(VoucherOut), **problems(400, 404, 409, 415, 422)},
        description="Uses the voucher, once. The same external_id again answers 200 "
        "with the same body; another is refused (422: already used), as are expired and "
        "cancelled vouchers. The use records the key's channel and store.",
    )
    def post(self, request, code):
        fields, key = validated(VoucherUseRequest, request), request.auth
        voucher_or_404(code)
        with transaction.atomic():
            used = use_voucher(
                code=code,
                external_id=fields["external_id"],
                by=request.user,
                channel=key.channel,
                store=key.store,
            )
            if getattr(used, "skipped", False):
                # An exact repeat: the first answer, whatever happened since (the
                # account merged into another); the voucher as it is when none was kept.
                first = FirstAnswer.of(used.used_external_id, kind=VOUCHER_USE)
                return Response(first or rendered(VoucherOut, used), status=200)
            # The redemption, not the code: whoever may view members reads the history
            log_api_change(  # on the account that holds it now, as a cancellation is
                key, used.holder, f"Used the {used.voucher_name} of redemption {used.pk}"
            )
            body = rendered(VoucherOut, used)
            FirstAnswer.keep(used.used_external_id, body, kind=VOUCHER_USE)  # with the use
        return Response(body, status=201)
