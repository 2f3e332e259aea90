"""A member search lists its matches newest first, whichever way the page is read
(loyalty_site.member_search: walked from the newest member when the newest hold a page
of matches, else read from the search indexes and sorted), in the list and in the
member picker, in bounded queries. The speed of each way is bench/admin.py's."""

import pytest
from django.urls import reverse

from loyalty_site import member_search

pytestmark = pytest.mark.django_db

PICKER = {"app_label": "points", "model_name": "ledgerentry", "field_name": "member"}


@pytest.fixture
def enrolled(make_member):
    """Twelve old members (A-01 to A-12), then twelve newer ones (B-01 to B-12)."""
    old = [make_member(f"A-{n:02d}") for n in range(1, 13)]
    new = [make_member(f"B-{n:02d}") for n in range(1, 13)]
    return old, new


@pytest.mark.parametrize("window", [1_000, 4], ids=["walked", "sorted"])
@pytest.mark.parametrize("term, which", [("a-", 0), ("B-", 1), ("A-1", 0)])
def test_a_member_search_lists_its_matches_newest_first_in_the_list_and_the_picker(
    client_admin, enrolled, monkeypatch, django_assert_max_num_queries, window, term, which
):
    # given: pages of five rows; the newest `window` members looked at for a page
    monkeypatch.setattr(member_search, "WINDOW", window)
    list_url = reverse("admin:members_member_changelist")
    cl = client_admin.get(list_url).context["cl"]
    monkeypatch.setattr(cl.model_admin, "list_per_page", 5)
    expected = [
        m.external_id for m in reversed(enrolled[which]) if m.external_id.startswith(term.upper())
    ]

    # when: an agent searches the list (both pages) and types the same in the picker
    listed = []
    for p in ["1", "2", "3"]:
        with django_assert_max_num_queries(10):
            page = client_admin.get(list_url, {"q": term, "p": p})
        listed += [m.external_id for m in page.context["cl"].result_list]
        if len(listed) == len(expected):
            break
    picked = client_admin.get(reverse("admin:autocomplete"), {**PICKER, "term": term}).json()

    # then: the same matches, newest first, in both; the picker names each one's tier
    assert listed == expected
    assert [r["text"].split(" ")[0] for r in picked["results"]] == expected
    assert all(r["text"].endswith(" · Bronze") for r in picked["results"])


def test_the_member_list_names_a_degraded_member_s_two_tiers(client_admin, member, tiers):
    # given a Silver member degraded to Bronze
    type(member).objects.filter(pk=member.pk).update(
        qualified_tier=tiers["silver"], effective_tier=tiers["bronze"]
    )

    # when an agent finds them
    page = client_admin.get(reverse("admin:members_member_changelist"), {"q": member.external_id})

    # then the tier column says both
    assert "Bronze (qualified Silver)" in page.content.decode()


@pytest.mark.parametrize("typed", ["²", "99999999999999999999", "1.5", "", "-1"])
def test_a_hand_typed_tier_filter_that_names_no_tier_gives_no_error_page(
    client_admin, member, typed
):
    # when a bookmark or a hand-typed address filters the list sorted by lifetime points
    # by something that is no tier's id
    page = client_admin.get(
        reverse("admin:members_member_changelist"),
        {"effective_tier__id__exact": typed, "o": "-6"},
    )

    # then the list's own "wrong filter" page, or an empty list: never a server error
    assert page.status_code in (200, 302)
    if page.status_code == 302:
        assert page["Location"].endswith("?e=1")
    else:
        assert page.context["cl"].result_count == 0


@pytest.mark.parametrize("window", [6, 1_000], ids=["spread", "all-in-window"])
@pytest.mark.parametrize("indexed_cost", [0, 10**9], ids=["indexes", "walk"])
@pytest.mark.parametrize("cap, shown", [(20, "12 members"), (10, "More than 10 members")])
def test_a_member_search_counts_its_matches_whichever_way_they_are_read(
    client_admin, make_member, monkeypatch, window, indexed_cost, cap, shown
):
    # given: every other member of 24 named Hugo; pages of two rows, counted up to `cap`
    from core.paginator import CappedPaginator
    from members.models import Member

    for n in range(24):
        member = make_member(f"C-{n:02d}")
        Member.objects.filter(pk=member.pk).update(first_name="Hugo" if n % 2 else "Ana")
    monkeypatch.setattr(member_search, "WINDOW", window)
    monkeypatch.setattr(member_search, "INDEXED_MATCH_COST", indexed_cost)
    monkeypatch.setattr(CappedPaginator, "cap", cap)
    list_url = reverse("admin:members_member_changelist")
    monkeypatch.setattr(client_admin.get(list_url).context["cl"].model_admin, "list_per_page", 2)

    # when an agent searches for them, in the list's order and sorted by a column
    pages = [
        client_admin.get(list_url, {"q": "hugo"}),
        client_admin.get(list_url, {"q": "hugo", "o": "1"}),
    ]

    # then: the count says how many, or that there are more than the cap
    for page in pages:
        assert shown in page.content.decode()
