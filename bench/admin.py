"""CX Manager pages on a large programme, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/admin.py [--members 100000] [--entries 10] \
        [--busy 5000]

Works in a scratch database (see synthetic.py). Loads N members with names and e-mails,
`--entries` ledger entries each (10 by default: --members 1000000 makes 10,000,000), and
one busy member (a corporate card) with `--busy` entries (5,000 by default), and a tier
history of a year (some of it back-dated); then 3 in 10 as many members who enrolled
and never bought (Bronze, 0 lifetime points, as many in a real programme: the lists
sorted fewest first tie on them), after the others, so that the N members and their
work are as they were; degradation and quarterly expiry are on. Takes the analytics
snapshots (the first run catches up ANALYTICS_HISTORY_DAYS days from the ledger, the
next is a nightly run: target under 10 s). Then requests each page through Django's
test client, as a logged-in superuser, and prints the server time (median and slowest
of 5 requests after one warm-up) and the number of queries.
Target: every page under 150 ms at 1,000,000 members and 10,000,000 entries; the
member pages with their explanations (Member 360), as of today and of a past day.
"""

import time
from datetime import timedelta

from staff_work import agent, load_daily_work
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

# One member in 40 (with this remainder), above the lowest tier, was degraded and restored.
DEGRADED = 8
# The member picker (the dashboard's "type and pick"), as it asks at each key typed.
PICKER = "/admin/autocomplete/?app_label=points&model_name=ledgerentry&field_name=member"
# The lists' tenth page exists from this many members (the first name searched matches one
# in 14): below it the far pages are not timed.
FAR_PAGES_FROM = 20_000
REPEATS = 5
# Members who never bought, per buying member: tied at 0 lifetime points.
NEVER_BOUGHT_SHARE = 0.3


def main():
    args, bands = start(__doc__, "admin", entries=10, busy=5_000)
    if args.busy < 1_500:  # an hour apart: the page as of 60 days ago needs entries that old
        raise SystemExit("--busy: 1,500 entries at least (one an hour, over 60 days)")

    from django.contrib.auth import get_user_model
    from django.db.models import Min
    from django.test import Client
    from django.utils import timezone

    from loyalty_site.demo import FIRST_NAMES, LAST_NAMES
    from members.models import Member
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
        return args.busy if pk == 1 else args.entries

    def tier_for(lifetime):
        return [tier for tier, threshold in bands if threshold <= lifetime][-1]

    def contact(pk):  # id, code, e-mail, names and phone
        first = FIRST_NAMES[pk % len(FIRST_NAMES)]
        last = LAST_NAMES[(pk // len(FIRST_NAMES)) % len(LAST_NAMES)]
        email = f"{first}.{last}.{pk}@example.com".lower()
        return pk, f"S-{pk:08d}", email, first, last, f"+346{pk:08d}"

    def members():
        for pk in range(1, args.members + 1):
            lifetime = sum(entry_points(pk, i) for i in range(entries_of(pk)))
            tier = tier_for(lifetime)
            last_purchase = now - timedelta(days=pk % 120)
            yield (
                *contact(pk),
                now - timedelta(days=400),
                tier,
                tier,
                tier,
                lifetime,
                lifetime,
                last_purchase,
            )
        for pk in range(args.members + 1, args.members + never_bought + 1):
            yield (
                *contact(pk),
                now - timedelta(days=pk % 400),
                bands[0][0],
                bands[0][0],
                bands[0][0],
                0,
                0,
                None,
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
            if pk % 40 == DEGRADED and tier != tiers[0]:  # dropped a tier, then bought
                below = tiers[tiers.index(tier) - 1]
                yield pk, "degradation", tier, below, tier, now - timedelta(days=60)
                yield pk, "restoration", below, tier, tier, now - timedelta(days=30)
        for pk in range(args.members + 1, args.members + never_bought + 1):
            yield pk, "joined", None, bands[0][0], bands[0][0], now - timedelta(days=pk % 400)

    never_bought = int(args.members * NEVER_BOUGHT_SHARE)
    total = args.members * args.entries + args.busy - args.entries
    if args.reuse:
        get_user_model().objects.filter(username="bench").delete()
    else:
        with timed(f"load {args.members + never_bought:,} members"):
            copy_rows("members_member", MEMBER_COLUMNS, members())
            reset_sequence("members_member")
        with timed(f"load {total:,} ledger entries"):
            copy_rows("points_ledgerentry", [*LEDGER_COLUMNS, "campaign_points"], entries())
            reset_sequence("points_ledgerentry")
        with timed("load the tier history"):
            copy_rows("members_tierchange", HISTORY_COLUMNS, history())
            reset_sequence("members_tierchange")
        with timed("load the staff's daily work"):
            load_daily_work(args.members, now, agent(), purchase)
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
    # A member degraded and restored (the history's one in 40), near the middle.
    degraded = Member.objects.filter(pk__gte=middle, tier_changes__reason="degradation").aggregate(
        first=Min("pk")
    )["first"]
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
        (
            "search: first and last name",
            f"/admin/members/member/?q={FIRST_NAMES[middle % len(FIRST_NAMES)]}+{last_name}",
        ),
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
        (f"member page, {args.busy:,} entries", "/admin/members/member/1/change/"),
        ("member page, degraded and restored", f"/admin/members/member/{degraded}/change/"),
        ("  its ledger, page 150", "/admin/members/member/1/change/?ledger=150"),
        # Member 360: the member as of a past day, the ledger up to it, all explained.
        ("  as of 60 days ago", f"/admin/members/member/1/change/?as_of={as_of:%Y-%m-%d}"),
        ("ledger list", "/admin/points/ledgerentry/"),
        ("dashboard (stake cached)", "/admin/"),
        ("expiry preview (kept)", "/admin/points/expirypolicy/preview/"),
        ("  its page 20 (last)", "/admin/points/expirypolicy/preview/?page=20"),
        ("programme analytics", "/admin/analytics/"),
        ("  its tiers as CSV", "/admin/analytics/tiers.csv"),
        ("  its campaigns as CSV", "/admin/analytics/campaigns.csv"),
    ]
    print(
        f"members {args.members:,} and {never_bought:,} who never bought, "
        f"ledger entries {total:,}; "
        f"server time over {REPEATS} requests after a warm-up"
    )
    with page_settings():
        started = time.perf_counter()
        assert client.get("/admin/").status_code == 200
    print(f"dashboard, first (cold): {1000 * (time.perf_counter() - started):.0f} ms")
    print("  (it takes the expiry preview's figures, kept for both)")

    def explained(url, response):
        """Member pages explain every line and the tier (Member 360); a campaign's page
        says how many members it reaches today."""
        if "/change/" in url:
            shown = b'class="cx-why"' if "/members/member/" in url else b"Reaches "
            assert shown in response.content, url

    time_pages(client, pages, repeats=REPEATS, check=explained)
    print("\nAs staff use it all day: searches, filters, sorts, far pages, actions")
    time_pages(client, daily_pages(args.members, bands), width=44, repeats=REPEATS)
    time_actions(client, args.members)


def daily_pages(members, bands):
    """What an agent, a marketer and operations open all day: each list's searches,
    filters and sortable columns, and its last page (the paginator stops counting at
    1,000 rows: ten pages of 100)."""
    from loyalty_site.demo import FIRST_NAMES, LAST_NAMES

    middle = members // 2 + 7
    first = FIRST_NAMES[middle % len(FIRST_NAMES)]
    last = LAST_NAMES[(middle // len(FIRST_NAMES)) % len(LAST_NAMES)]
    email = f"{user_email_prefix(middle)}@example.com"
    picker = "/admin/autocomplete/?app_label=points&model_name=ledgerentry&field_name=member"
    m = "/admin/members/member/"
    pages = [
        ("members: by code (A-Z)", f"{m}?o=1"),
        ("members: by code (Z-A)", f"{m}?o=-1"),
        ("members: by code (A-Z), last page", f"{m}?o=1&p=10"),
        ("members: by lifetime, most first", f"{m}?o=-6"),
        ("members: by lifetime, fewest first", f"{m}?o=6"),
        ("members: by lifetime, most first, last page", f"{m}?o=-6&p=10"),
        # The members who never bought, all at 0, come first.
        ("members: by lifetime, fewest first, last page", f"{m}?o=6&p=10"),
        *[
            (f"members: tier {n}", f"{m}?effective_tier__id__exact={pk}")
            for n, (pk, _) in enumerate(bands)
        ],
        *tier_by_lifetime(m, bands),
        ("members: last page", f"{m}?p=10"),
        ("search: whole e-mail", f"{m}?q={email}"),
        ("search: whole phone", f"{m}?q=%2B346{middle:08d}"),
        ("search: first name (many)", f"{m}?q={first}"),
        ("search: first and last name", f"{m}?q={first}+{last}"),
        ("search: code prefix S-0001 (many)", f"{m}?q=S-0001"),
        ("search: code prefix S-005 (100,000 old)", f"{m}?q=S-005"),
        ("search: code prefix S-00 (most, old)", f"{m}?q=S-00"),
        ("picker: code prefix S-0001", f"{PICKER}&term=S-0001"),
        ("picker: first name (many)", f"{PICKER}&term={first}"),
        ("search: one letter (many)", f"{m}?q=m"),
        ("search: no match", f"{m}?q=zzqx"),
        ("search: no match, two words", f"{m}?q=zzqx+yyqx"),
        ("search: many matches, last page", f"{m}?q={first}&p=10"),
        ("picker: customer code", f"{picker}&term=S-{middle:08d}"),
        ("picker: e-mail prefix", f"{picker}&term={user_email_prefix(middle)[:12]}"),
        ("picker: first name (many)", f"{picker}&term={first}"),
        ("picker: first name, page 2", f"{picker}&term={first}&page=2"),
        ("picker: one letter", f"{picker}&term=m"),
        ("picker: no match", f"{picker}&term=zzqx"),
        ("member history (busy, 300 lines)", f"{m}1/history/"),
        ("member history (ordinary)", f"{m}{middle}/history/"),
    ]
    ledger = "/admin/points/ledgerentry/"
    for kind in ["earn", "redemption", "adjustment", "expiry", "bonus", "refund", "return"]:
        pages.append((f"ledger: {kind}", f"{ledger}?kind__exact={kind}"))
    pages += [
        ("ledger: search customer code", f"{ledger}?q=S-{middle:08d}"),
        ("ledger: search the busy member's code", f"{ledger}?q=S-00000001"),
        ("ledger: last page", f"{ledger}?p=10"),
        ("ledger: an import's entries", f"{ledger}?batch__id__exact=5"),
    ]
    tx = "/admin/points/transaction/"
    pages += [
        ("transactions", tx),
        ("transactions: last page", f"{tx}?p=10"),
        ("transactions: search id", f"{tx}?q=T-{middle}-1"),
        ("transactions: search customer code", f"{tx}?q=S-{middle:08d}"),
        *[
            (f"transactions: {kind}", f"{tx}?kind__exact={kind}")
            for kind in ["purchase", "return", "action"]
        ],
        ("transactions: an import's", f"{tx}?batch__id__exact=5"),
    ]
    r = "/admin/rewards/redemption/"
    pages += [
        ("redemptions", r),
        ("redemptions: last page", f"{r}?p=10"),
        *sorted_by("redemptions", r, code=1, redeemed=3, member=4),
        *[
            (f"redemptions: {v}", f"{r}?voucher={v}")
            for v in ["valid", "used", "expired", "cancelled"]
        ],
        ("redemptions: search e-mail", f"{r}?q={email}"),
    ]
    h = "/admin/members/tierchange/"
    pages += [
        ("tier changes", h),
        ("tier changes: last page", f"{h}?p=10"),
        ("tier changes: search code", f"{h}?q=S-{middle:08d}"),
        *sorted_by("tier changes", h, member=1),
        *[
            (f"tier changes: {reason}", f"{h}?reason__exact={reason}")
            for reason in ["joined", "upgrade", "degradation", "manual"]
        ],
    ]
    n = "/admin/members/notification/"
    pages += [
        ("messages", n),
        ("messages: last page", f"{n}?p=10"),
        ("messages: search code", f"{n}?q=S-{middle:08d}"),
        *[
            (f"messages: {kind}", f"{n}?kind__exact={kind}")
            for kind in ["tier_up", "degradation", "expiry_reminder", "status_match"]
        ],
        *[(f"messages: {d}", f"{n}?delivery={d}") for d in ["waiting", "refused", "given_up"]],
    ]
    i = "/admin/core/importbatch/"
    pages += [
        ("imports", i),
        *sorted_by("imports", i, file=0, kind=1, by=2, uploaded=3, status=4, rows=5),
        ("imports: with errors", f"{i}?status__exact=invalid"),
    ]
    a = "/admin/points/adjustmentrequest/"
    pages += [
        ("point requests", a),
        *sorted_by("point requests", a, requested=0, member=1, points=2, by=3, status=4),
        ("point requests: waiting", f"{a}?status__exact=pending"),
        ("point requests: search code", f"{a}?q=S-{middle - middle % 1000:08d}"),
        ("approvals page", "/admin/approvals/"),
        ("status matches", "/admin/tiers/statusgrant/"),
    ]
    if members < FAR_PAGES_FROM:  # fewer than ten pages of 100 in some lists
        pages = [(label, url) for label, url in pages if "p=10" not in url]
    return pages


def tier_by_lifetime(url, bands):
    """The member list of one tier (Bronze, mostly members who never bought, at 0;
    Gold, held by many; Platinum, by few) sorted by lifetime points, both ways, its
    first and last page: a marketer's list."""
    return [
        (f"members: tier {n} by lifetime, {way}{far}", f"{url}?{tier}&o={o}{page}")
        for n in (0, 2, 3)
        for tier in [f"effective_tier__id__exact={bands[n][0]}"]
        for way, o in [("most", "-6"), ("fewest", "6")]
        for far, page in [("", ""), (", last page", "&p=10")]
    ]


def sorted_by(name, url, **columns):
    """A list sorted by each sortable column, both ways: `?o=` counts the columns of
    list_display from 0, the action checkbox first where the list has actions."""
    return [
        (f"{name}: by {column}{' (desc)' if sign else ''}", f"{url}?o={sign}{index}")
        for column, index in columns.items()
        for sign in ["", "-"]
    ]


def time_actions(client, members):
    """Select all (every row of the list, not only the page) and choose an action: the
    page that follows (a confirmation, or a message that asks for fewer rows)."""
    import statistics

    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    actions = [
        ("members: all, erase (confirmation)", "/admin/members/member/", "erase"),
        ("redemptions: all, cancel", "/admin/rewards/redemption/", "cancel"),
        ("redemptions: all, mark used", "/admin/rewards/redemption/", "use"),
        ("redemptions: valid, mark used", "/admin/rewards/redemption/?voucher=valid", "use"),
    ]
    print(f"{'action':<44} {'median':>8} {'slowest':>8} {'queries':>8}")
    with page_settings():
        for label, url, action in actions:
            data = {
                "action": action,
                "select_across": "1",
                "index": "0",
                ACTION_CHECKBOX_NAME: ["1"],
            }
            times = []
            for _ in range(3):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.post(url, data)
                    times.append(time.perf_counter() - started)
                assert response.status_code in (200, 302), (url, response.status_code)
            print(
                f"{label:<44} {1000 * statistics.median(times):7.0f} ms "
                f"{1000 * max(times):7.0f} ms {len(queries):8}"
            )


def user_email_prefix(pk):
    from loyalty_site.demo import FIRST_NAMES, LAST_NAMES

    first = FIRST_NAMES[pk % len(FIRST_NAMES)]
    last = LAST_NAMES[(pk // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{first}.{last}.{pk}".lower()


if __name__ == "__main__":
    main()
