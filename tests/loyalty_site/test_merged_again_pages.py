"""M7 on the member pages: a customer's accounts merged one into the next (M-A into
M-B, then M-B into M-C). Each closed account's page names the account it was merged
into, when and by whom, and, when that account was merged in turn, where the points
are now; each page lists the accounts merged into it."""

import re
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import connection

from members.models import Member
from members.services import merge_members
from points.services import adjust_points
from tests.conftest import at
from tests.loyalty_site.conftest import page, said
from tiers.models import DegradationPolicy, Tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(make_member, staff, django_user_model):
    """M-A merged into M-B on 3 Mar 2026 by agent; M-B into M-C on 5 May 2026 by sam."""
    a, b, c = make_member("M-A"), make_member("M-B"), make_member("M-C")
    adjust_points(member=a, points=300, reason="Welcome", by=staff, now=at("2026-03-01"))
    sam = django_user_model.objects.create_user("sam", is_staff=True)
    merge_members(survivor=b, duplicate=a, by=staff, reason="New e-mail", now=at("2026-03-03"))
    merge_members(survivor=c, duplicate=b, by=sam, reason="Card lost", now=at("2026-05-05"))
    return a, b, c


def test_the_first_closed_account_names_the_account_it_was_merged_into_and_where_its_points_are(
    client_admin, chain
):
    # given
    a, _, _ = chain

    # when
    html = page(client_admin, a)

    # then: merged into M-B on 3 Mar by agent (not "into M-C on 3 Mar"); M-C holds it now
    assert said(html, "merged") == (
        "Closed: merged into M-B on 3 Mar 2026 by agent. M-B was merged in turn: "
        "the points are at M-C since 5 May 2026. This account earns and redeems nothing more."
    )


def test_the_middle_account_names_its_own_merge_and_the_account_merged_into_it(client_admin, chain):
    # given
    _, b, _ = chain

    # when
    html = page(client_admin, b)

    # then
    assert said(html, "merged") == (
        "Closed: merged into M-C on 5 May 2026 by sam. Its points are there; "
        "this account earns and redeems nothing more."
    )
    assert said(html, "merged-from") == "Accounts merged into this one: M-A (3 Mar 2026)."


def test_the_account_kept_lists_each_account_with_the_merge_that_closed_it(client_admin, chain):
    # given
    _, _, c = chain

    # when
    html = page(client_admin, c)

    # then: M-A was never merged into M-C on 3 Mar: it came with M-B
    assert said(html, "merged-from") == (
        "Accounts merged into this one: M-B (5 May 2026), M-A (merged into M-B on 3 Mar 2026)."
    )


def test_a_write_on_the_first_closed_account_names_its_own_merge_and_the_account_to_use(
    chain, staff
):
    # given
    a, _, _ = chain

    # when
    with pytest.raises(ValidationError) as refused:
        adjust_points(member=Member.objects.get(pk=a.pk), points=10, reason="Goodwill", by=staff)

    # then
    assert refused.value.messages == [
        "M-A was merged into M-B on 3 Mar 2026 and is closed: use M-C instead."
    ]


def test_accounts_merged_before_the_upgrade_learn_their_merge_from_the_ledger(
    client_admin, chain, make_member, staff
):
    # given: the chain, and M-X (no points) merged into M-Y, then M-Y into M-C, all
    # merged before members 0022 kept the account each merge named
    x, y = make_member("M-X"), make_member("M-Y")
    merge_members(survivor=y, duplicate=x, by=staff, reason="New e-mail", now=at("2026-03-04"))
    merge_members(survivor=chain[2], duplicate=y, by=staff, reason="Moved", now=at("2026-05-06"))
    Member.objects.update(merge_survivor=None)
    upgrade = import_module("members.migrations.0022_member_merge_survivor")

    # when
    upgrade.from_their_own_merge(django_apps, SimpleNamespace(connection=connection))

    # then: the ledger's merge lines name M-A's; nothing moved from M-X, so its page
    # says when, not into which account
    closed = dict(
        Member.objects.filter(merged_into__isnull=False).values_list(
            "external_id", "merge_survivor__external_id"
        )
    )
    assert closed == {"M-A": "M-B", "M-B": "M-C", "M-X": None, "M-Y": "M-C"}
    assert said(page(client_admin, x), "merged") == (
        "Closed: merged on 4 Mar 2026 by agent. The points are at M-C since 6 May 2026. "
        "This account earns and redeems nothing more."
    )
    assert said(page(client_admin, chain[2]), "merged-from") == (
        "Accounts merged into this one: M-Y (6 May 2026), M-B (5 May 2026), "
        "M-X (4 Mar 2026, here since 6 May 2026), M-A (merged into M-B on 3 Mar 2026)."
    )


def test_a_closed_account_s_page_offers_no_rewards_nor_a_way_to_the_next_tier(
    client_admin, chain, catalogue
):
    # given a catalogue, and M-B closed (merged into M-C)
    _, b, c = chain

    # when an agent opens M-B's page
    html = page(client_admin, b)

    # then it shows no catalogue the account could never redeem from, nor points to a
    # tier it will never reach, but where the customer's rewards are
    assert 'id="reward-' not in html and "Needs " not in html
    assert 'id="to-next-tier"' not in html
    assert said(html, "closed-rewards") == (
        "A closed account redeems nothing: the customer's rewards are on M-C's page."
    )
    # and the account kept still offers them
    assert said(page(client_admin, c), "closed-rewards") is None


def test_a_closed_account_s_page_lists_no_benefits_and_earns_nothing(client_admin, chain):
    # given the entry tier with a benefit, and M-B closed (merged into M-C)
    _, b, c = chain
    Tier.objects.filter(threshold=0).update(benefits="Birthday gift")
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})

    # when an agent opens M-B's page
    html = page(client_admin, b)

    # then the tier it is left at promises nothing: no benefit, no multiplier, no drop
    assert 'id="benefits"' not in html and 'id="multiplier"' not in html
    assert said(html, "degradation-status") == ""
    closed = re.search(r'id="closed-tier">(.*?)</span>', html, re.S).group(1)
    assert " ".join(re.sub(r"<[^>]+>", "", closed).split()) == (
        "a closed account: no benefits, it earns nothing; the customer's tier is M-C's"
    )
    # and the account kept still shows its tier's
    kept = page(client_admin, c)
    assert 'id="multiplier"' in kept and 'id="closed-tier"' not in kept
