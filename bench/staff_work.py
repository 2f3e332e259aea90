"""A year of the CX Manager's work beside the ledger, for bench/admin.py: what staff
leave on a large programme (transactions and returns, redemptions and vouchers,
adjustments and their requests, an expiry run, messages, imports, the admin's history),
written with COPY in a scratch database."""

from datetime import timedelta

from synthetic import LEDGER_COLUMNS, REDEMPTION_COLUMNS, copy_rows, reset_sequence, vacuum


def agent():
    """The CX agent whose adjustments, requests and imports the daily work names (kept
    by --reuse, unlike the superuser who times the pages)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="bench-agent")[0]


BUSY_LOG = 300  # the busy member's (pk 1) actions in the admin's history


def load_daily_work(members, now, agent, purchase):
    """What a year of the CX Manager leaves beside the ledger, scaled on the members:
    two transactions each (one in 25 with a return), a redemption for one in 5 (a
    voucher: a third used, a tenth cancelled), an adjustment for one in 500 and a point
    request for one in 1,000, an expiry entry for one in 10 at the last quarter's
    cutoff, one message each (tier-up mostly, one in 1,000 waiting, one in 5,000
    refused), 300 imports, and an admin history line each (assigned points, a
    redemption), 300 for member 1."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from members.models import Member
    from points.models import PointDefinition
    from rewards.codes import new_code
    from rewards.models import Reward

    manual = PointDefinition.objects.get(handle="manual-adjustment").pk
    reward, _ = Reward.objects.get_or_create(
        name="5 euro voucher", defaults=dict(points_cost=500, voucher_value=5)
    )
    day = timedelta(days=1)

    def transactions():
        for pk in range(1, members + 1):
            at = now - timedelta(days=pk % 120, hours=3)
            store = f"STORE-{pk % 50:02d}"
            yield 2 * pk - 1, f"T-{pk}-1", pk, "purchase", 120, at, "pos", store, None, at
            if pk % 25 == 0:
                yield 2 * pk, f"T-{pk}-2", pk, "return", 20, at + day, "pos", store, 2 * pk - 1, at
            else:
                channel = "ecommerce" if pk % 3 else "api"
                yield 2 * pk, f"T-{pk}-2", pk, "purchase", 80, at + day, channel, "", None, at

    copy_rows(
        "points_transaction",
        [
            "id",
            "external_id",
            "member_id",
            "kind",
            "amount",
            "occurred_at",
            "channel",
            "store",
            "original_id",
            "created_at",
        ],
        transactions(),
    )
    reset_sequence("points_transaction")

    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(id) FROM points_ledgerentry")
        base = cursor.fetchone()[0]
    quarter_end = timezone_quarter_end(now)
    ledger = [*LEDGER_COLUMNS, "id", "created_by_id", "cutoff"]

    def entries():
        n = base
        for pk in range(1, members + 1):
            at = now - timedelta(days=pk % 90, hours=1)
            if pk % 5 == 0:
                n += 1
                yield (
                    pk,
                    purchase,
                    "redemption",
                    -500,
                    False,
                    True,
                    at,
                    at,
                    "Redeemed",
                    at,
                    n,
                    None,
                    None,
                )
            if pk % 500 == 0:
                n += 1
                yield (
                    pk,
                    manual,
                    "adjustment",
                    100,
                    False,
                    True,
                    at,
                    at,
                    "Goodwill",
                    at,
                    n,
                    agent.pk,
                    None,
                )
            if pk % 10 == 0:
                n += 1
                yield (
                    pk,
                    purchase,
                    "expiry",
                    -50,
                    False,
                    True,
                    quarter_end[1],
                    quarter_end[1],
                    "Expired",
                    quarter_end[1],
                    n,
                    None,
                    quarter_end[0],
                )

    copy_rows("points_ledgerentry", ledger, entries())
    reset_sequence("points_ledgerentry")

    def redemptions():
        n = base
        for pk in range(1, members + 1):
            at = now - timedelta(days=pk % 90, hours=1)
            if pk % 5 == 0:
                n += 1
                k = pk // 5
                used, cancelled = k % 3 == 0, k % 3 and k % 10 == 0
                yield (
                    k,
                    pk,
                    reward.pk,
                    500,
                    "cancelled" if cancelled else "redeemed",
                    at,
                    n,
                    new_code(),
                    (at + 90 * day).date(),
                    5,
                    at + day if used else None,
                    f"BENCH-USE-{k}" if used else None,
                    "pos" if used else "",
                    "STORE-01" if used else "",
                    at + day if cancelled else None,
                    reward.name,
                    reward.stock is not None,
                )
            n += (pk % 500 == 0) + (pk % 10 == 0)

    copy_rows(
        "rewards_redemption",
        REDEMPTION_COLUMNS,
        redemptions(),
    )
    reset_sequence("rewards_redemption")

    kinds = [(7, "degradation"), (11, "restoration"), (13, "expiry_reminder")]

    def notifications():
        for pk in range(1, members + 1):
            kind = next((k for step, k in kinds if pk % step == 0), "tier_up")
            at = now - timedelta(days=pk % 400, minutes=pk % 1440)
            refused = pk % 5000 == 1
            sent = None if pk % 1000 == 0 or refused else at + timedelta(minutes=1)
            yield (
                pk,
                kind,
                "{}",
                quarter_end[0] if kind == "expiry_reminder" else None,
                100 if kind == "expiry_reminder" else None,
                at,
                sent,
                2 if refused else 0,
                "550 Mailbox unavailable" if refused else "",
                at if refused else None,
            )

    copy_rows(
        "members_notification",
        [
            "member_id",
            "kind",
            "context",
            "cutoff",
            "points",
            "created_at",
            "sent_at",
            "failed_attempts",
            "last_error",
            "first_refused_at",
        ],
        notifications(),
    )
    vacuum("members_notification")

    copy_rows(
        "points_adjustmentrequest",
        [
            "member_id",
            "points",
            "reason",
            "definition_id",
            "above",
            "requested_by_id",
            "requested_at",
            "status",
            "decided_by_id",
            "decided_at",
            "decision_reason",
        ],
        (
            (
                pk,
                5000,
                "Goodwill",
                manual,
                "above your limit of 1,000",
                agent.pk,
                now - timedelta(days=pk % 300),
                status,
                None if status == "pending" else agent.pk,
                None if status == "pending" else now - timedelta(days=pk % 300 - 1),
                "",
            )
            for pk in range(1000, members + 1, 1000)
            for status in ["pending" if pk % 10000 == 0 else ("approved" if pk % 3 else "rejected")]
        ),
    )
    vacuum("points_adjustmentrequest")

    copy_rows(
        "core_importbatch",
        [
            "kind",
            "file",
            "file_name",
            "size",
            "uploaded_by_id",
            "uploaded_at",
            "status",
            "rows",
            "new",
            "updated",
            "skipped",
            "error_count",
            "points",
            "members",
            "first_errors",
            "errors_file",
            "failure",
            "started_at",
            "finished_at",
            "given_back",
        ],
        (
            (
                "transactions",
                f"imports/day-{i}.csv",
                f"day-{i}.csv",
                1000,
                agent.pk,
                now - i * day,
                "done" if i % 20 else "invalid",
                10_000,
                10_000,
                0,
                0,
                0 if i % 20 else 3,
                100_000,
                5_000,
                "[]",
                "",
                "",
                now - i * day,
                now - i * day + timedelta(seconds=30),
                0,
            )
            for i in range(1, 301)
        ),
    )
    vacuum("core_importbatch")

    member_type = ContentType.objects.get_for_model(Member).pk

    def log():
        for pk in [1] * (BUSY_LOG - 1) + list(range(1, members + 1)):
            yield (
                now - timedelta(minutes=pk),
                agent.pk,
                member_type,
                str(pk),
                f"S-{pk:08d}",
                2,
                "Assigned +100 points: Goodwill",
            )

    copy_rows(
        LogEntry._meta.db_table,
        [
            "action_time",
            "user_id",
            "content_type_id",
            "object_id",
            "object_repr",
            "action_flag",
            "change_message",
        ],
        log(),
    )
    vacuum(LogEntry._meta.db_table)


def timezone_quarter_end(now):
    """The last quarter's cutoff before now: (its day, the moment it was run)."""
    from django.utils import timezone

    from points.expiry_selectors import cutoff_instant

    today = timezone.localdate(now)
    first = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    cutoff = first - timedelta(days=1)
    return cutoff, cutoff_instant(cutoff)
