"""The body of each webhook event, read from the row it reports when it is sent: one
query per event type in a batch (and one for the status matches' last days).
`{type, timestamp, data}`, as the contract says; the member is named by its customer
code, tiers by `{code, name}`."""

import json
from collections import defaultdict

from django.db.models import Q

from core.events import EventType
from members.models import Member, Notification, TierChange
from points.models import LedgerEntry, Transaction
from rewards.models import Redemption
from tiers.models import StatusGrant

Reason = TierChange.Reason


def bodies(deliveries) -> dict[int, str]:
    """{delivery id: JSON body} for a batch of deliveries; none for a delivery whose
    subject is gone (an expiry reminder a merge dropped as its event was written)."""
    result = {}
    for event_type, batch in _by_type(deliveries).items():
        if event_type in _CARRIED:
            data = {d.subject_id: d.data for d in batch if carries_its_data(d)}
        else:
            data = _READERS[event_type]({d.subject_id for d in batch})
        for delivery in batch:
            if delivery.subject_id not in data:
                continue
            body = {
                "type": event_type,
                "timestamp": delivery.created_at.isoformat(),
                "data": data[delivery.subject_id],
            }
            result[delivery.pk] = json.dumps(body, separators=(",", ":"))
    return result


# Events whose data is kept on the delivery (WebhookDelivery.data), not read from their
# subject: member.erased, whose code the erasure replaced. It is removed once the
# delivery is delivered or given up (api.webhooks: scrubbed); such a body is never sent.
_CARRIED = {EventType.MEMBER_ERASED}
SCRUBBED = Q(type__in=_CARRIED, data__isnull=True)


def carries_its_data(delivery) -> bool:
    """False for a delivery whose data was scrubbed (SCRUBBED, for one row)."""
    return delivery.type not in _CARRIED or delivery.data is not None


def subjects_gone(deliveries) -> set[int]:
    """The ids of deliveries whose subject no longer exists: expiry reminders dropped
    by a merge or an erasure (core.events.withdraw)."""
    gone = set()
    for event_type, batch in _by_type(deliveries).items():
        found = _READERS[event_type]({d.subject_id for d in batch})
        gone |= {d.pk for d in batch if d.subject_id not in found}
    return gone


def _by_type(deliveries) -> dict[str, list]:
    by_type = defaultdict(list)
    for delivery in deliveries:
        by_type[delivery.type].append(delivery)
    return by_type


def _tier(tier) -> dict | None:
    return {"code": tier.code, "name": tier.name} if tier else None


def _time(value):
    return value.isoformat() if value else None


def _enrolled(ids) -> dict:
    """The member as they joined: the tier of their "joined" history row, not the tier
    they hold when the event is sent (a purchase made since is its own tier change);
    their code, e-mail and names as they are (an erased member's events are not sent:
    api.webhooks._withhold_erased; the admin shows them erased)."""
    members = Member.objects.filter(pk__in=ids).select_related("effective_tier")
    joined = TierChange.objects.filter(member_id__in=ids, reason=TierChange.Reason.JOINED)
    joined_in = {}
    for change in joined.select_related("to_tier").order_by("-pk"):
        joined_in[change.member_id] = change.to_tier  # the first, if ever more than one
    return {
        m.pk: {
            "member": m.external_id,
            "email": m.email,
            "first_name": m.first_name,
            "last_name": m.last_name,
            "joined_at": _time(m.joined_at),
            # a member enrolled before joins were recorded: the tier they hold
            "tier": _tier(joined_in.get(m.pk, m.effective_tier)),
        }
        for m in members
    }


def _tier_changed(ids) -> dict:
    changes = TierChange.objects.filter(pk__in=ids).select_related(
        "member", "from_tier", "to_tier", "qualified_tier"
    )
    last_days = _status_match_last_days(c for c in changes if c.reason == Reason.STATUS_MATCH)
    return {
        c.pk: {
            "member": c.member.external_id,
            "from_tier": _tier(c.from_tier),
            "to_tier": _tier(c.to_tier),
            "qualified_tier": _tier(c.qualified_tier),
            "reason": c.reason,
            "changed_at": _time(c.changed_at),
            "status_match_until": last_days.get((c.member_id, c.changed_at)),
        }
        for c in changes
    }


def _status_match_last_days(changes) -> dict:
    """(member id, moment) of each status match's change: the match's last day, which
    grant_status recorded at that moment (a date, to its end in TIME_ZONE)."""
    keys = {(c.member_id, c.changed_at) for c in changes}
    if not keys:
        return {}
    grants = StatusGrant.objects.filter(
        member_id__in={member for member, _ in keys}, granted_at__in={at for _, at in keys}
    )
    return {
        (member, at): until.isoformat()
        for member, at, until in grants.values_list("member_id", "granted_at", "until")
        if (member, at) in keys
    }


def _expiring(ids) -> dict:
    reminders = Notification.objects.filter(pk__in=ids).select_related("member")
    return {
        n.pk: {"member": n.member.external_id, "cutoff": n.cutoff.isoformat(), "points": n.points}
        for n in reminders
    }


def _expired(ids) -> dict:
    entries = LedgerEntry.objects.filter(pk__in=ids).select_related("member")
    return {
        e.pk: {
            "member": e.member.external_id,
            "cutoff": e.cutoff.isoformat(),
            "points": -e.points,
            "expired_at": _time(e.issued_at),
        }
        for e in entries
    }


def _redemption(ids) -> dict:
    redemptions = Redemption.objects.filter(pk__in=ids).select_related("member")
    return {
        r.pk: {
            "member": r.member.external_id,
            "id": r.pk,
            "external_id": r.external_id,
            "reward": {"id": r.reward_id, "name": r.reward_name},
            "points": r.points,
            "redeemed_at": _time(r.redeemed_at),
            "cancelled_at": _time(r.cancelled_at),
            # W5: what the CRM sends the customer to use at the till
            "code": r.code,
            "valid_until": r.valid_until.isoformat(),
            "value": str(r.value) if r.value is not None else None,
        }
        for r in redemptions
    }


def _redeemed(ids) -> dict:
    """The redemption as it was made, even when its event goes out after a cancellation
    (an endpoint down meanwhile): the cancellation follows as its own event, so a CRM
    that applies them in order ends with the redemption as it is."""
    return {pk: {**data, "cancelled_at": None} for pk, data in _redemption(ids).items()}


def _recorded(ids) -> dict:
    txns = Transaction.objects.filter(pk__in=ids).select_related("member", "original", "definition")
    points = defaultdict(int)
    for txn_id, entry_points in LedgerEntry.objects.filter(transaction_id__in=ids).values_list(
        "transaction_id", "points"
    ):
        points[txn_id] += entry_points
    return {
        t.pk: {
            "member": t.member.external_id,
            "external_id": t.external_id,
            "kind": t.kind,
            "amount": str(t.amount) if t.amount is not None else None,
            "occurred_at": _time(t.occurred_at),
            "channel": t.channel,
            "store": t.store,
            "original_external_id": t.original.external_id if t.original else None,
            # an action's definition (a review...): what it was for; none for a purchase
            "definition": t.definition.handle if t.definition else None,
            "points": points[t.pk],
        }
        for t in txns
    }


_READERS = {
    EventType.MEMBER_ENROLLED: _enrolled,
    EventType.MEMBER_TIER_CHANGED: _tier_changed,
    EventType.POINTS_EXPIRING: _expiring,
    EventType.POINTS_EXPIRED: _expired,
    EventType.REDEMPTION_CREATED: _redeemed,
    EventType.REDEMPTION_CANCELLED: _redemption,
    EventType.TRANSACTION_RECORDED: _recorded,
}
