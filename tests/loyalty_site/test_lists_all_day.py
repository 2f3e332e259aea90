"""The CX Manager's long lists as staff use them all day: searches, filters and sorts
answer in a fixed number of queries and offer only what the indexes answer quickly
(the figures at a million members are bench/admin.py's)."""

import pytest
from django.db import connection
from django.urls import reverse

from members.models import Member
from tests.conftest import postgres_only

pytestmark = pytest.mark.django_db


def test_the_transaction_search_finds_a_transaction_by_its_id_and_a_member_s_by_the_code(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    # given two members with purchases
    alice, bob = make_member(), make_member()
    buy(alice, "10", external_id="TILL-42-0001")
    buy(bob, "20", external_id="TILL-42-0002")
    buy(bob, "30", external_id="TILL-42-0003")
    url = reverse("admin:points_transaction_changelist")

    # when an agent searches a transaction id, then a customer code (any case)
    with django_assert_max_num_queries(8):
        by_id = client_admin.get(url, {"q": " TILL-42-0002 "}).content.decode()
    with django_assert_max_num_queries(8):
        by_code = client_admin.get(url, {"q": bob.external_id.lower()}).content.decode()

    # then the id finds that transaction alone, the code every transaction of the member
    assert "TILL-42-0002" in by_id
    assert "TILL-42-0001" not in by_id and "TILL-42-0003" not in by_id
    assert "TILL-42-0002" in by_code and "TILL-42-0003" in by_code
    assert "TILL-42-0001" not in by_code


def sortable_columns(page) -> list[str]:
    from django.contrib.admin.templatetags.admin_list import result_headers

    return [str(h["text"]) for h in result_headers(page.context["cl"]) if h["sortable"]]


@pytest.mark.parametrize(
    "name, sortable",
    [
        # the others sorted every row of the list on each page (seconds at a million)
        ("members_tierchange", ["member"]),
        ("members_notification", []),
        ("rewards_redemption", ["Code", "Redeemed", "Member"]),
        ("points_ledgerentry", []),
        ("points_transaction", []),
    ],
)
def test_long_lists_sort_only_by_what_an_index_answers(client_admin, member, name, sortable):
    page = client_admin.get(reverse(f"admin:{name}_changelist"))

    assert page.status_code == 200
    assert sortable_columns(page) == sortable


def test_a_hand_typed_sort_on_a_column_the_list_does_not_offer_leaves_its_order(
    client_admin, make_member, buy
):
    # given members whose points run against the list's own order (newest first)
    rich, poor = make_member(), make_member()
    buy(rich, "500")
    url = reverse("admin:members_member_changelist")
    points = client_admin.get(url).context["cl"].list_display.index("points")

    # when an address sorts by points, which the list does not offer (a bookmark, a
    # hand-typed ?o=: a sort of every member, seconds at a million)
    page = client_admin.get(url, {"o": f"-{points}"})  # most points first

    # then the list keeps its own order (the newest member first), and shows no column
    # as sorted
    assert page.status_code == 200
    rows = [m.external_id for m in page.context["cl"].result_list]
    assert rows.index(poor.external_id) < rows.index(rich.external_id)
    assert not any(h.get("sorted") for h in _headers(page))


def test_the_member_list_of_one_tier_sorts_by_lifetime_points_in_bounded_queries(
    client_admin, tiers, make_member, buy, django_assert_max_num_queries
):
    # given Silver members with different lifetime points, and a Bronze member
    silver = [make_member() for _ in range(5)]
    for member, amount in zip(silver, ["1500", "1100", "2500", "1200", "1800"], strict=True):
        buy(member, amount)
    buy(make_member(), "50")
    url = reverse("admin:members_member_changelist")
    lifetime = client_admin.get(url).context["cl"].list_display.index("lifetime")

    # when a marketer lists Silver by lifetime points, most first, then fewest first (an
    # index on the tier and the points answers it: 1.7 s a page at a million without)
    listed = {}
    for sign in ["-", ""]:
        with django_assert_max_num_queries(8):
            page = client_admin.get(
                url, {"effective_tier__id__exact": tiers["silver"].pk, "o": f"{sign}{lifetime}"}
            )
        assert page.status_code == 200
        listed[sign] = [m.external_id for m in page.context["cl"].result_list]

    # then each lists the Silver members alone, in the order of their lifetime points
    by_points = sorted(silver, key=lambda m: Member.objects.get(pk=m.pk).lifetime_points)
    assert listed["-"] == [m.external_id for m in reversed(by_points)]
    assert listed[""] == [m.external_id for m in by_points]


def test_members_who_tie_on_lifetime_points_are_listed_fewest_first_as_the_reverse_of_most_first(
    client_admin, tiers, make_member, buy, monkeypatch, django_assert_max_num_queries
):
    # given members who never bought (all at 0 lifetime points), enrolled one after the
    # other, and one who bought; pages of three
    never = [make_member() for _ in range(4)]
    buyer = make_member()
    buy(buyer, "50")
    url = reverse("admin:members_member_changelist")
    cl = client_admin.get(url).context["cl"]
    monkeypatch.setattr(cl.model_admin, "list_per_page", 3)
    lifetime = cl.list_display.index("lifetime")

    for tier in [{}, {"effective_tier__id__exact": tiers["bronze"].pk}]:
        # when a marketer sorts the list (whole, then Bronze) by lifetime points fewest
        # first, then most first, and reads both pages of each
        listed = {}
        for sign in ["", "-"]:
            listed[sign] = []
            for p in ["1", "2"]:
                with django_assert_max_num_queries(8):
                    page = client_admin.get(url, {**tier, "o": f"{sign}{lifetime}", "p": p})
                listed[sign] += [m.external_id for m in page.context["cl"].result_list]

        # then fewest first lists those who never bought in the order they enrolled,
        # then the buyer; most first is the same list backwards (one index, read either
        # way, answers both: no sort of the members who tie, hundreds of thousands)
        assert listed[""] == [m.external_id for m in [*never, buyer]], tier
        assert listed["-"] == list(reversed(listed[""])), tier


@postgres_only
@pytest.mark.parametrize("sign", ["", "-"])
@pytest.mark.parametrize("one_tier", [False, True])
def test_the_member_list_sorted_by_lifetime_points_is_read_from_an_index_unsorted(
    client_admin, tiers, make_member, buy, sign, one_tier
):
    # given members, some of whom tie on lifetime points
    for amount in [None, None, "50", "1500", "1500"]:
        member = make_member()
        if amount:
            buy(member, amount)
    url = reverse("admin:members_member_changelist")
    lifetime = client_admin.get(url).context["cl"].list_display.index("lifetime")
    query = {"o": f"{sign}{lifetime}"}
    if one_tier:
        query["effective_tier__id__exact"] = tiers["silver"].pk

    # when the list is sorted by lifetime points (either way, whole or one tier), and
    # PostgreSQL plans its page with any sort step priced out
    cl = client_admin.get(url, query).context["cl"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        plan = cl.queryset[: cl.list_per_page].explain()

    # then the page is read in its order from an index: nothing sorts the rows that tie;
    # one tier's from the tier's index (loyalty_site.member_list), not by walking every
    # member by lifetime points past the other tiers'
    assert "Sort" not in plan, plan
    index = "member_tier_lifetime" if one_tier else "member_lifetime_points"
    assert index in plan, plan


@postgres_only
def test_the_member_list_of_one_tier_newest_first_is_read_from_the_tier_s_index(
    client_admin, tiers, make_member, buy
):
    # given Silver members, and newer Bronze ones
    silver = [make_member() for _ in range(3)]
    for member in silver:
        buy(member, "1500")
    newer = [make_member() for _ in range(3)]
    url = reverse("admin:members_member_changelist")

    # when a marketer opens the Silver list (newest first), its page planned by
    # PostgreSQL with any sort step priced out
    cl = client_admin.get(url, {"effective_tier__id__exact": tiers["silver"].pk}).context["cl"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        plan = cl.queryset[: cl.list_per_page].explain()

    # then Silver, newest first, read from the tier's index: not by walking the ids back
    # past the newer members of other tiers
    assert [m.pk for m in cl.result_list] == [m.pk for m in reversed(silver)]
    assert newer and "member_tier_newest" in plan and "Sort" not in plan, plan


def _headers(page):
    from django.contrib.admin.templatetags.admin_list import result_headers

    return list(result_headers(page.context["cl"]))


def test_the_history_and_message_lists_filter_by_reason_and_kind_in_bounded_queries(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    # given members who reached Silver (history, a bonus, a message each)
    for _ in range(5):
        buy(make_member(), "1200")

    # when operations filter each list by what they look for, newest first
    pages = {
        "members_tierchange": {"reason__exact": "upgrade"},
        "members_notification": {"kind__exact": "tier_up"},
        "points_ledgerentry": {"kind__exact": "bonus"},
        "points_transaction": {"kind__exact": "purchase"},
    }
    for name, query in pages.items():
        with django_assert_max_num_queries(8):
            page = client_admin.get(reverse(f"admin:{name}_changelist"), query)

        # then each lists the five, whatever their number, in a fixed number of queries
        assert page.status_code == 200
        assert len(page.context["cl"].result_list) == 5, name


def test_the_transaction_list_offers_no_channel_filter(client_admin, member):
    page = client_admin.get(reverse("admin:points_transaction_changelist"))

    assert [spec.title for spec in page.context["cl"].filter_specs] == ["kind"]


def test_a_member_s_history_page_lists_what_staff_did_in_bounded_queries(
    client_admin, member, admin_user, django_assert_max_num_queries
):
    # given a member whose page staff used many times
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    kind = ContentType.objects.get_for_model(member)
    LogEntry.objects.bulk_create(
        LogEntry(
            user=admin_user,
            content_type=kind,
            object_id=str(member.pk),
            object_repr=str(member),
            action_flag=CHANGE,
            change_message=f"Assigned +{n} points: goodwill",
        )
        for n in range(1, 31)
    )

    # when an agent opens the member's history
    with django_assert_max_num_queries(10):
        page = client_admin.get(reverse("admin:members_member_history", args=[member.pk]))

    # then every line is there
    assert page.status_code == 200
    assert "Assigned +30 points" in page.content.decode()


@pytest.mark.parametrize("page", ["5", "500"])
def test_a_page_past_the_last_shows_the_last_page_with_the_search_kept(
    client_admin, make_member, monkeypatch, page
):
    # given: three Gs, two to a page: two pages
    from django.contrib import admin

    monkeypatch.setattr(admin.site.get_model_admin(Member), "list_per_page", 2)
    for code in ("M-G1", "M-G2", "M-G3"):
        make_member(code)
    make_member("M-OTHER")
    url = reverse("admin:members_member_changelist")

    # when: an old link to a later page
    response = client_admin.get(url, {"q": "M-G", "p": page})

    # then: the last page, still searched, not Django's bare "?e=1"
    assert response.status_code == 200
    assert [m.external_id for m in response.context["cl"].result_list] == ["M-G1"]


def test_the_ledger_list_reads_as_staff_read_it(client_admin, member, staff, settings, tmp_path):
    """Found by a walkthrough: "Issued at" first over a list in the order entries were
    recorded (an import's, dated days before, looked out of order), points without
    separators, and "Created by -" for an import's entries."""
    from datetime import timedelta

    from django.utils import timezone

    from core.models import ImportBatch
    from points.services import adjust_points, batches
    from tests.points.transaction_files import HEADER

    settings.IMPORTS_ROOT = tmp_path
    day = (timezone.localdate() - timedelta(days=3)).isoformat()
    batches.import_now(
        kind=ImportBatch.Kind.TRANSACTIONS,
        data=f"{HEADER}T-1,{member.external_id},purchase,2000.00,{day},,,\n".encode(),
        file_name="week.csv",
        by=staff,
    )
    adjust_points(member=member, points=1500, reason="Goodwill", by=staff)

    page = client_admin.get(reverse("admin:points_ledgerentry_changelist"))

    headers = [str(h["text"]).capitalize() for h in page.context["result_headers"]]
    assert headers[:5] == ["Recorded", "Member", "Kind", "Points", "Issued at"]
    rows = page.context["cl"].result_list
    shown = page.content.decode()
    assert [entry.points for entry in rows] == [1500, 100, 2000]  # newest recorded first (a bonus)
    assert ">1,500<" in shown and ">2,000<" in shown
    assert f">Import\u00a0{ImportBatch.objects.get().pk}<" in shown


def test_the_transaction_list_shows_an_action_s_missing_amount_as_a_dash(client_admin, member):
    """Found by a review: the amount with separators read "None" for an action."""
    from points.models import PointDefinition
    from points.services import award_action

    review, _ = PointDefinition.objects.get_or_create(
        handle="write-a-review", defaults=dict(name="Write a review", kind="action", points=200)
    )
    from django.utils import timezone

    award_action(member=member, definition=review, external_id="A-1", occurred_at=timezone.now())

    page = client_admin.get(reverse("admin:points_transaction_changelist")).content.decode()

    assert '<td class="field-amount_shown">-</td>' in page
