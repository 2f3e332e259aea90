"""Purchases, returns and actions, each idempotent on its external_id (P8): the first
call 201, an exact repeat 200 with the same body, the same id with other content 409.
The channel is the key's; the store is the key's, or the body's when the key has none."""

from django.db.models import Sum
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Unknown
from api.models import FirstAnswer
from api.serializers import ActionRequest, TransactionRequest, TransactionResult, rendered
from api.views.common import for_member, problems, summary, validated, written
from members.models import Member
from points.models import LedgerEntry, PointDefinition
from points.selectors import programme
from points.services import award_action, record_purchase, record_return


def transaction_result(txn, member, plan) -> Response:
    """201 with the transaction, its points and the member after it; for an exact
    repeat, 200 with the first answer's body."""
    skipped = getattr(txn, "skipped", False)
    if not skipped:  # the service's figures: the member as the transaction left it
        points, member = txn.points_added, txn.member
    elif (first := FirstAnswer.of(txn.external_id)) is not None:
        return Response(first, status=200)
    else:  # the first answer still on its way: the figures as they stand now
        points = LedgerEntry.objects.filter(transaction=txn).aggregate(total=Sum("points"))
        points, member = points["total"] or 0, Member.objects.get(pk=member.pk)
    body = {
        "external_id": txn.external_id,
        "member": member.external_id,
        "kind": txn.kind,
        "amount": txn.amount,
        "occurred_at": txn.occurred_at,
        "channel": txn.channel,
        "store": txn.store,
        "original_external_id": txn.original.external_id if txn.original_id else None,
        "points": points,
        "summary": summary(member, plan),
    }
    data = rendered(TransactionResult, body)
    # Kept for the repeats. A repeat that came while the first answer was on its way
    # (the write committed, the answer not kept yet) gives the figures as they stand,
    # and keeps them only until the first answer is kept.
    FirstAnswer.keep(txn.external_id, data, first=not skipped)
    return Response(data, status=200 if skipped else 201)


class Transactions(APIView):
    @extend_schema(
        operation_id="record_transaction",
        request=TransactionRequest,
        responses={**written(TransactionResult), **problems(400, 404, 409, 415, 422)},
        description="A purchase earns at the member's tier and the running campaigns; a "
        "return takes back, in proportion, what its purchase earned. The same "
        "external_id again with the same content answers 200 with the first answer; with "
        "other content, 409.",
    )
    def post(self, request):
        fields, key = validated(TransactionRequest, request), request.auth

        def record(member, plan):
            common = dict(
                member=member,
                amount=fields["amount"],
                occurred_at=fields["occurred_at"],
                external_id=fields["external_id"],
                channel=key.channel,
                store=key.store or fields["store"],
                by=request.user,
            )
            if fields["kind"] == "purchase":
                txn = record_purchase(**common)
            else:
                original = fields["original_external_id"]
                txn = record_return(**common, original_external_id=original)
            return transaction_result(txn, member, plan)

        return for_member(fields["member"], record)


class Actions(APIView):
    @extend_schema(
        operation_id="award_action",
        request=ActionRequest,
        responses={**written(TransactionResult), **problems(400, 404, 409, 415, 422)},
        description="An action (a review, a referral) earns its definition's fixed points. "
        "Repeats answer as for a transaction.",
    )
    def post(self, request):
        fields = validated(ActionRequest, request)
        handle = fields["definition"]
        definition = programme().named(handle)  # "Review" names review (P1)
        if definition is None or definition.kind != PointDefinition.Kind.ACTION:
            raise Unknown("definition", f"No action definition has the handle {handle}.")

        def award(member, plan):
            txn = award_action(
                member=member,
                definition=definition,
                occurred_at=fields["occurred_at"],
                external_id=fields["external_id"],
                channel=request.auth.channel,
                store=request.auth.store,
                by=request.user,
            )
            return transaction_result(txn, member, plan)

        return for_member(fields["member"], award)
