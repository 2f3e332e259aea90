"""Returns (P4): a return names its purchase and takes back, in proportion, the
points that purchase was awarded. `return_reversal` is the rule on a locked member,
shared with the import, which also keeps the purchases it reads (`Purchase`)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Value, When

from members.selectors import owner
from points.models import Channel, LedgerEntry, Transaction
from points.services.late_returns import Expired
from points.services.posting import (
    Movement,
    entry_of,
    idempotent,
    in_batches,
    lock,
    post_transaction,
    recorded_before,
)
from points.services.rules import return_points, transaction_fields

Kind = LedgerEntry.Kind


@dataclass(slots=True)
class Purchase:
    """What a return needs of its purchase: recorded before, or earlier in the same
    import."""

    pk: int
    external_id: str
    member_id: int
    amount: Decimal
    occurred_at: datetime
    earn: Movement | None
    returned: Decimal = Decimal(0)
    reversed: int = 0
    # Which expiry runs found its points in the balance of the member holding it now
    # (late_returns): those written after its earning (its ledger id: None for one of
    # the same import), and, when it was recorded on an account merged since into the
    # member, of the cutoffs after that merge (`merged_at`).
    earned_id: int | None = None
    merged_at: datetime | None = None


class Refused(Exception):
    """A transaction that breaks a rule: (column, reason)."""


def before_its_purchase(original_external_id: str) -> Refused:
    return Refused("occurred_at", f"it comes before its purchase {original_external_id}")


def return_reversal(
    member, bought: Purchase | None, original_external_id: str, *, amount, at
) -> Movement | None:
    """The rules of a return (P4) on a locked member, in memory: it names a purchase
    of the member, does not come before it, and does not return more than is left.
    Returns its reversal, if it takes back any points, and counts the return on
    `bought`; record_return and the import both use it."""
    if bought is None or bought.member_id != member.id:
        raise Refused(
            "original_external_id",
            f"{member.external_id} has no purchase {original_external_id!r}",
        )
    if at < bought.occurred_at:
        raise before_its_purchase(original_external_id)
    left = bought.amount - bought.returned
    if amount > left:
        raise Refused("amount", f"{amount} is more than the {left} left to return")
    reversal = None
    if bought.earn is not None:
        points = return_points(
            awarded=bought.earn.points,
            reversed_before=bought.reversed,
            amount=amount,
            returned_before=bought.returned,
            purchase_amount=bought.amount,
        )
        if points:
            reversal = _reversal(bought, points, amount=amount, at=at)
        bought.reversed += points
    bought.returned += amount
    return reversal


def _reversal(bought: "Purchase", points: int, *, amount, at) -> Movement:
    """The entry of a return (P4): minus `points`, counted as the earning was counted,
    whatever the definition says today. Points still pending on the purchase are taken
    back when they accrue."""
    earn = bought.earn
    return Movement(
        Kind.RETURN,
        -points,
        earn.definition_id,
        earn.counts_toward_tier,
        earn.redeemable,
        at,
        max(at, earn.accrue_at),
        f"Return of {amount} of {bought.external_id}",
    )


@idempotent
def record_return(
    *,
    member,
    amount,
    occurred_at,
    external_id,
    original_external_id,
    channel=Channel.API,
    store="",
    by=None,
) -> Transaction:
    """A return takes back the points its purchase was awarded, in proportion (P4).
    `store`: where it was returned (a till's, or the web shop's)."""
    fields = transaction_fields(
        kind=Transaction.Kind.RETURN,
        external_id=external_id,
        occurred_at=occurred_at,
        channel=channel,
        store=store,
        amount=amount,
    )
    with transaction.atomic():
        member, plan, recorded_id = lock(member, external_id)
        bought = recorded_purchases({original_external_id}).get(original_external_id)
        own = bought.pk if bought and bought.member_id == member.pk else None
        # P8 first: an id recorded before, with another purchase named (or none of the
        # member's), is a conflict, not a refused return.
        content = dict(member_id=member.pk, original_id=own, **fields)
        if existing := recorded_before(recorded_id, **content):
            return existing
        try:
            reversal = return_reversal(
                member, bought, original_external_id, amount=fields["amount"], at=occurred_at
            )
        except Refused as refused:
            column, reason = refused.args
            raise ValidationError({column: f"Cannot return {external_id}: {reason}."}) from None
        txn = Transaction(member=member, original_id=bought.pk, created_by=by, **fields)
        moves = [reversal] if reversal else []
        moves += Expired().give_back(member, reversal, bought, external_id=external_id)
        entries = [entry_of(member, move, transaction=txn, created_by=by) for move in moves]
        post_transaction(member, plan, txn, entries, at=occurred_at, by=by)
    return txn


def recorded_purchases(names) -> dict:
    """The purchases with these external ids already in the database, with what was
    returned and reversed of them so far."""
    purchases = {}
    for batch in in_batches(names):
        found = {
            pk: Purchase(pk, external_id, member_id, amount, at, None, merged_at=merged_at)
            # member_id: the member holding the purchase's points now, so that an
            # account merged since returns its purchases through the survivor.
            for pk, external_id, member_id, amount, at, merged_at in Transaction.objects.filter(
                external_id__in=batch, kind="purchase"
            ).values_list(
                "pk", "external_id", owner("member"), "amount", "occurred_at", _merged_at()
            )
        }
        earns = LedgerEntry.objects.filter(transaction__in=found, kind=Kind.EARN).values_list(
            "transaction_id",
            "pk",
            "points",
            "definition_id",
            "counts_toward_tier",
            "redeemable",
            "issued_at",
            "accrue_at",
        )
        for pk, earned_id, points, definition_id, counts, redeemable, issued_at, accrue_at in earns:
            found[pk].earn = Movement(
                Kind.EARN, points, definition_id, counts, redeemable, issued_at, accrue_at
            )
            found[pk].earned_id = earned_id
        # Returns first, then their entries: each step an index look-up by id.
        returns = {}
        for pk, original_id, amount in Transaction.objects.filter(original__in=found).values_list(
            "pk", "original_id", "amount"
        ):
            found[original_id].returned += amount
            returns[pk] = found[original_id]
        for txn_id, points in LedgerEntry.objects.filter(
            transaction__in=returns, kind=Kind.RETURN
        ).values_list("transaction_id", "points"):
            returns[txn_id].reversed -= points
        purchases.update((p.external_id, p) for p in found.values())
    return purchases


def _merged_at():
    """Of a purchase: when the account it was recorded on was merged into the member
    holding its points now; NULL if it was not merged, and the end of time if merged
    twice, whose points reached the member at a merge not told here."""
    return Case(
        When(member__merged_into=None, then=None),
        When(member__merge_survivor=F("member__merged_into"), then=F("member__merged_at")),
        default=Value(datetime.max.replace(tzinfo=UTC)),
        output_field=DateTimeField(),
    )
