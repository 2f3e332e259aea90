"""Redemptions (W3, W4), idempotent like every write: a redemption on its external_id,
a cancellation on the redemption (cancelling it again answers 200 with it)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Unknown
from api.history import log_api_change
from api.models import FirstAnswer
from api.serializers import RedemptionOut, RedemptionRequest
from api.views.common import for_member, problems, validated, written
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption, redeem

REDEMPTION = FirstAnswer.Kind.REDEMPTION


class Redemptions(APIView):
    @extend_schema(
        operation_id="redeem",
        request=RedemptionRequest,
        responses={**written(RedemptionOut), **problems(400, 404, 409, 415, 422)},
        description="Spends the member's available points on a reward, and gives its "
        "voucher. The same external_id again with the same content answers 200 with the "
        "first answer; with other content, 409.",
    )
    def post(self, request):
        fields = validated(RedemptionRequest, request)

        @transaction.atomic
        def spend(member, plan):
            # an inactive reward is the service's to refuse (422), after it has looked
            # whether this is a repeat of a redemption made while it was offered (200)
            reward = Reward.objects.filter(pk=fields["reward"]).first()
            if reward is None:
                raise Unknown("reward", f"No reward has the id {fields['reward']}.")
            redemption = redeem(
                member=member, reward=reward, by=request.user, external_id=fields["external_id"]
            )
            if getattr(redemption, "skipped", False):
                # An exact repeat: the first answer, whatever happened to it since (a
                # use, a cancellation); the redemption as it is when none was kept.
                first = FirstAnswer.of(redemption.external_id, kind=REDEMPTION)
                return Response(first or RedemptionOut(redemption).data, status=200)
            log_api_change(request.auth, member, f"Redeemed {reward.name}")
            body = RedemptionOut(redemption).data
            FirstAnswer.keep(redemption.external_id, body, kind=REDEMPTION)  # with the redemption
            return Response(body, status=201)

        return for_member(fields["member"], spend)


class CancelRedemption(APIView):
    @extend_schema(
        operation_id="cancel_redemption",
        request=None,
        responses={200: RedemptionOut, **problems(404, 422)},
        description="Gives the points back and the unit back to stock. A key cancels "
        "the redemptions made through keys of its channel; the others are unknown to it.",
    )
    def post(self, request, pk):
        # A till or shop cancels what its channel redeemed, not what staff redeemed in
        # the CX Manager nor another channel's: those answer 404, as unknown ids do.
        of_channel = Redemption.objects.filter(redeemed_by__api_key__channel=request.auth.channel)
        redemption = of_channel.select_related("member__merged_into").filter(pk=pk).first()
        if redemption is None:
            raise NotFound(f"No redemption of this channel has the id {pk}.")
        try:
            with transaction.atomic():
                if redemption.status != Redemption.Status.CANCELLED:
                    redemption = cancel_redemption(redemption=redemption, by=request.user)
                    message = f"Cancelled the redemption of {redemption.reward_name}"
                    # In the history of the member refunded: a merged account's survivor.
                    log_api_change(request.auth, redemption.holder, message)
        except ValidationError:
            redemption.refresh_from_db()
            if redemption.status != Redemption.Status.CANCELLED:
                raise
            # cancelled meanwhile by a request like this one: the same answer
        return Response(RedemptionOut(redemption).data)
