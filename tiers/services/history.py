"""Tier history (T4) and the messages to members it causes: a TierLog collects the
changes of one write and saves them together; apply_changes writes those of a
set-based run, and announce_changes sends them out (event, messages)."""

from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter

from django.db import connection
from django.db.models import DateTimeField, F
from django.db.models.functions import Cast
from django.utils import timezone

from core import events, figures
from core.bulk import bulk_insert, reserve_ids
from core.jobs import lock_in_id_order
from core.models import WebhookDelivery
from members.models import Notification, TierChange

Reason = TierChange.Reason
TIER_CHANGED = events.EventType.MEMBER_TIER_CHANGED


@dataclass(slots=True)
class _Change:
    """A tier change (T4) to write: the fields of its TierChange (_CHANGE_FIELDS)."""

    member_id: int
    reason: str
    from_tier_id: int | None
    to_tier_id: int
    qualified_tier_id: int
    changed_at: datetime
    created_by_id: int | None
    frozen_until: datetime | None  # a drop's: the member's freeze as it is made
    pk: int | None = None  # once written


@dataclass(slots=True)
class _Message:
    """A message to a member about a tier change, to write as a Notification."""

    member_id: int
    kind: str
    change: _Change
    context: dict


_CHANGE_FIELDS = [f.name for f in fields(_Change) if f.name != "pk"]


class TierLog(list):
    """The tier changes (T4) and messages to members one write produces, saved together
    once the write is complete, whether it is one purchase or a whole import. Kept as
    plain records, not model objects: an import makes tens of thousands."""

    def write(self) -> None:
        """Save through the ORM: the few rows of one member's write."""
        records = self._changes()
        changes = [
            TierChange(**{name: getattr(r, name) for name in _CHANGE_FIELDS}) for r in records
        ]
        bulk_insert(TierChange, changes)
        for record, change in zip(records, changes, strict=True):
            record.pk = change.pk
        events.record_many(TIER_CHANGED, [(c.member_id, c.pk) for c in records])
        bulk_insert(
            Notification,
            [
                Notification(
                    member_id=m.member_id,
                    kind=m.kind,
                    tier_change_id=m.change.pk,
                    context=m.context,
                )
                for m in self._messages()
            ],
        )
        self.clear()

    def tables(self) -> list:
        """The rows to write, as (model, columns, rows) for core.bulk.CopyBehind:
        the changes first, then the messages and webhook events that name them."""
        changes, messages = self._changes(), self._messages()
        for change, pk in zip(changes, reserve_ids(TierChange, len(changes)), strict=True):
            change.pk = pk
        values = attrgetter("pk", *_CHANGE_FIELDS)
        now = timezone.now()
        tables = [
            (TierChange, ["id", *_CHANGE_FIELDS], [values(c) for c in changes]),
            (
                Notification,
                ["id", "member_id", "kind", "tier_change_id", "context", "created_at"],
                [
                    (pk, m.member_id, m.kind, m.change.pk, m.context, now)
                    for m, pk in zip(
                        messages, reserve_ids(Notification, len(messages)), strict=True
                    )
                ],
            ),
            (
                WebhookDelivery,
                events.DELIVERY_COLUMNS,
                events.delivery_rows(TIER_CHANGED, [(c.member_id, c.pk) for c in changes]),
            ),
        ]
        self.clear()
        return tables

    def tell_from_last_change(self, member_id: int) -> None:
        """The member's messages told from their last change in this log, as it leaves
        them: a merge's tier-up, then the status match it carries over, tells of the
        match going on ("Your Gold status match goes on..."), not of the tier's
        multiplier, which the match overrides. Only the messages of changes made at that
        moment: one of an earlier change (a night's drop the merge made, drops_missed)
        tells its own."""
        last = [c for c in self._changes() if c.member_id == member_id][-1]
        for message in self._messages():
            if message.member_id == member_id and message.change.changed_at == last.changed_at:
                message.change = last

    def _changes(self):
        return [x for x in self if isinstance(x, _Change)]

    def _messages(self):
        return [x for x in self if isinstance(x, _Message)]


def record_change(member, log: TierLog, *, reason, from_tier_id, at, by=None) -> _Change:
    change = _Change(
        member.pk,
        reason,
        from_tier_id,
        member.effective_tier_id,
        member.qualified_tier_id,
        at,
        by.pk if by else None,
        member.frozen_until if reason == Reason.DEGRADATION else None,
    )
    log.append(change)
    return change


def notify(member, log: TierLog, kind, change: _Change, **context) -> None:
    log.append(_Message(member.pk, kind, change, context))


def apply_changes(changes, *, reason, at) -> int:
    """Move a set of members to new tiers: lock them, record one history row each (T4),
    then set their effective tier to `target`. `changes` is a Member queryset annotated
    with `target` (the new effective tier id) and `new_qualified`.

    Locking first makes a purchase running at the same time wait, so the history and
    the update see the same rows. (SQLite has no row locks: its write transaction
    already excludes other writers.)"""
    if changes.query.is_empty():
        return 0
    # In id order, as every writer locks members: the model's own order (customer code)
    # would deadlock with an import.
    lock_in_id_order(changes)
    rows = changes.annotate(from_tier=F("effective_tier"))
    # A drop keeps the member's freeze, which its days without a purchase count from.
    freeze = F("frozen_until") if reason == Reason.DEGRADATION else Cast(None, DateTimeField())
    columns = rows.annotate(freeze=freeze).values(
        "pk", "from_tier", "target", "new_qualified", "freeze"
    )
    sql, params = columns.query.sql_with_params()
    history = TierChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {history} (member_id, reason, from_tier_id, to_tier_id,
                qualified_tier_id, changed_at, frozen_until)
            SELECT s.pk, %s, s.from_tier, s.target, s.new_qualified, %s, s.freeze
            FROM ({sql}) s
            """,
            [reason, connection.ops.adapt_datetimefield_value(at), *params],
        )
        changed = cursor.rowcount
    changes.update(effective_tier=F("target"))
    return changed


def announce_changes(reason, kind, *, at, first_id, last_id) -> None:
    """After a set-based run moved members with ids in [first_id, last_id]: the
    dashboard's figures go stale, the changes go out as one bulk member.tier_changed
    event, and each member gets their message (kind)."""
    figures.stale()
    events.record_bulk(
        TIER_CHANGED,
        TierChange,
        reason=reason,
        changed_at=at,
        member__gte=first_id,
        member__lte=last_id,
    )
    queue_notifications(reason, kind, at=at, first_id=first_id, last_id=last_id)


def queue_notifications(reason, kind, *, at, first_id, last_id) -> None:
    """One outbox message per tier change of this run, for the members with ids in
    [first_id, last_id], not yet announced (D4)."""
    outbox, history = Notification._meta.db_table, TierChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {outbox} (member_id, kind, context, tier_change_id, created_at)
            SELECT h.member_id, %s, '{{}}', h.id, %s FROM {history} h
            WHERE h.reason = %s AND h.changed_at = %s AND h.member_id BETWEEN %s AND %s
              AND NOT EXISTS (SELECT 1 FROM {outbox} n WHERE n.tier_change_id = h.id)
            """,
            [
                kind,
                connection.ops.adapt_datetimefield_value(at),
                reason,
                connection.ops.adapt_datetimefield_value(at),
                first_id,
                last_id,
            ],
        )
