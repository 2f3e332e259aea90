"""CX Manager pages on a large programme, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/admin.py [--members 100000] [--entries 10]

Works in a scratch database (see synthetic.py). Loads N members with names and e-mails,
`--entries` ledger entries each (10 by default: --members 1000000 makes 10,000,000), and
one member with 5,000 entries, and a tier history of a year (some of it back-dated);
degradation and quarterly expiry are on. Takes the
analytics snapshots (the first run catches up ANALYTICS_HISTORY_DAYS days from the
ledger, the next is a nightly run: target under 10 s). Then requests each page through
Django's test client, as a logged-in superuser, and prints the server time (median and
slowest of 5 requests after one warm-up) and the number of queries.
Target: every page under 150 ms at 1,000,000 members and 10,000,000 entries; the
member pages with their explanations (Member 360), as of today and of a past day.
"""

import time
from datetime import timedelta

from synthetic import (
    HISTORY_COLUMNS,
    LEDGER_COLUMNS,
    MEMBER_COLUMNS,
    copy_rows,
    page_settings,
    reset_sequence,
    start,
    time_pages,
    timed,
)

HEAVY_ENTRIES = 5_000
REPEATS = 5


def main():
    args, bands = start(__doc__, "admin", entries=10)

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from loyalty_site.demo import FIRST_NAMES, LAST_NAMES
    from points.models import Campaign, ExpiryPolicy, PointDefinition
    from tiers.models import DegradationPolicy

    purchase = PointDefinition.objects.get(handle="purchase-points").pk
    # A twelfth of the purchases earned under the seed's birthday campaign, which runs
    # all year: the campaigns' results sum them every night.
    birthday = Campaign.objects.get(birthday_month_only=True).pk
    now = timezone.now()

    def entry_points(pk, i):
        # Deterministic, spread over every tier: 20 to 400 points, times 1 to 10.
        return (20 + (pk * 7919 + i * 104729) % 381) * (1 + pk % 10)

    def entries_of(pk):
        return HEAVY_ENTRIES if pk == 1 else args.entries

    def tier_for(lifetime):
        return [tier for tier, threshold in bands if threshold <= lifetime][-1]

    def members():
        for pk in range(1, args.members + 1):
            first = FIRST_NAMES[pk % len(FIRST_NAMES)]
            last = LAST_NAMES[(pk // len(FIRST_NAMES)) % len(LAST_NAMES)]
            lifetime = sum(entry_points(pk, i) for i in range(entries_of(pk)))
            tier = tier_for(lifetime)
            last_purchase = now - timedelta(days=pk % 120)
            yield (
                pk,
                f"S-{pk:08d}",
                f"{first}.{last}.{pk}@example.com".lower(),
                first,
                last,
                f"+346{pk:08d}",
                now - timedelta(days=400),
                tier,
                tier,
                tier,
                lifetime,
                lifetime,
                last_purchase,
            )

    def entries():
        for pk in range(1, args.members + 1):
            count = entries_of(pk)
            for i in range(count):
                at = now - timedelta(days=pk % 120, hours=count - i)
                points = entry_points(pk, i)
                extra = f'{{"{birthday}": {points // 2}}}' if (pk + i) % 12 == 0 else None
                yield pk, purchase, "earn", points, True, True, at, at, "Purchase", at, extra

    def history():
        """Each member's tier history: joined in the lowest tier, then an upgrade to each
        tier up to theirs over the year. For one member in 30 the last upgrade is of the
        last week (the nightly snapshot's work); for one in 50 it is back-dated: recorded
        last, dated before the upgrade recorded before it."""
        for pk in range(1, args.members + 1):
            joined = now - timedelta(days=400)
            yield pk, "joined", None, bands[0][0], bands[0][0], joined
            tiers = [band for band, _ in bands]
            tier = tier_for(sum(entry_points(pk, i) for i in range(entries_of(pk))))
            for step in range(1, tiers.index(tier) + 1):
                at = joined + timedelta(days=100 * step)
                if step == tiers.index(tier) and pk % 30 == 0:
                    at = now - timedelta(days=2)
                elif step == tiers.index(tier) > 1 and pk % 50 == 0:
                    at = joined + timedelta(days=50)
                yield pk, "upgrade", tiers[step - 1], tiers[step], tiers[step], at

    total = args.members * args.entries + HEAVY_ENTRIES - args.entries
    if args.reuse:
        get_user_model().objects.filter(username="bench").delete()
    else:
        with timed(f"load {args.members:,} members"):
            copy_rows("members_member", MEMBER_COLUMNS, members())
            reset_sequence("members_member")
        with timed(f"load {total:,} ledger entries"):
            copy_rows("points_ledgerentry", [*LEDGER_COLUMNS, "campaign_points"], entries())
            reset_sequence("points_ledgerentry")
        with timed("load the tier history"):
            copy_rows("members_tierchange", HISTORY_COLUMNS, history())
            reset_sequence("members_tierchange")
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "quarterly", "starts_on": timezone.localdate()}
    )

    from points.services.snapshots import take_snapshots

    with timed("analytics: first snapshot"):
        days = take_snapshots()
    print(f"  ({days} days caught up from the ledger)")
    with timed("analytics: a nightly snapshot"):
        take_snapshots(now=timezone.now() + timedelta(days=1))

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    middle = args.members // 2 + 7
    as_of = timezone.localdate(now) - timedelta(days=60)
    last_name = LAST_NAMES[(middle // len(FIRST_NAMES)) % len(LAST_NAMES)]
    pages = [
        ("member list", "/admin/members/member/"),
        (
            "member list, one tier",
            f"/admin/members/member/?effective_tier__id__exact={bands[2][0]}",
        ),
        ("search: customer code", f"/admin/members/member/?q=S-{middle:08d}"),
        ("search: e-mail prefix", f"/admin/members/member/?q={user_email_prefix(middle)}"),
        ("search: last name", f"/admin/members/member/?q={last_name}"),
        ("search: phone prefix", f"/admin/members/member/?q=%2B346{middle:08d}"[:-2]),
        (
            "member picker (autocomplete)",
            "/admin/autocomplete/?app_label=points&model_name=ledgerentry&field_name=member"
            f"&term={last_name}",
        ),
        ("redemptions, search", f"/admin/rewards/redemption/?q=S-{middle:08d}"),
        ("campaign list", "/admin/points/campaign/"),
        ("campaign page (reach today)", f"/admin/points/campaign/{birthday}/change/"),
        ("member page", f"/admin/members/member/{middle}/change/"),
        ("member page, 5,000 entries", "/admin/members/member/1/change/"),
        ("  its ledger, page 150", "/admin/members/member/1/change/?ledger=150"),
        # Member 360: the member as of a past day, the ledger up to it, all explained.
        ("  as of 60 days ago", f"/admin/members/member/1/change/?as_of={as_of:%Y-%m-%d}"),
        ("ledger list", "/admin/points/ledgerentry/"),
        ("dashboard (stake cached)", "/admin/"),
        ("programme analytics", "/admin/analytics/"),
        ("  its tiers as CSV", "/admin/analytics/tiers.csv"),
        ("  its campaigns as CSV", "/admin/analytics/campaigns.csv"),
    ]
    print(
        f"members {args.members:,}, ledger entries {total:,}; "
        f"server time over {REPEATS} requests after a warm-up"
    )
    with page_settings():
        started = time.perf_counter()
        assert client.get("/admin/").status_code == 200
    print(f"dashboard, first (cold): {1000 * (time.perf_counter() - started):.0f} ms")

    def explained(url, response):
        """Member pages explain every line and the tier (Member 360); a campaign's page
        says how many members it reaches today."""
        if "/change/" in url:
            shown = b'class="cx-why"' if "/members/member/" in url else b"Reaches "
            assert shown in response.content, url

    time_pages(client, pages, repeats=REPEATS, check=explained)


def user_email_prefix(pk):
    from loyalty_site.demo import FIRST_NAMES, LAST_NAMES

    first = FIRST_NAMES[pk % len(FIRST_NAMES)]
    last = LAST_NAMES[(pk // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{first}.{last}.{pk}".lower()


if __name__ == "__main__":
    main()
