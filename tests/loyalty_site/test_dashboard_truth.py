"""The dashboard tells the truth: the figures it keeps a few minutes follow every bulk
write and every change of the programme, each panel says when its figures are from,
and members whose degradation is overdue are at risk."""

import html
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from points.models import ExpiryPolicy
from points.resources import read_transactions
from points.services import expire_points, import_transactions
from tiers.models import Tier
from tiers.services import degrade_inactive_members, grant_status, recalculate_all_tiers

pytestmark = pytest.mark.django_db
HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


def panel(client, panel_id) -> str:
    """The text a user reads in one panel of the dashboard, on a fresh request."""
    page = client.get(reverse("admin:index")).content.decode()
    section = re.search(rf'<section class="cx-panel" id="{panel_id}">(.*?)</section>', page, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section.group(1))).split())


def days_ago(days):
    return timezone.now() - timedelta(days=days)


def import_file(text):
    rows, errors = read_transactions(io.BytesIO((HEADER + text).encode()))
    report = import_transactions(rows, errors=errors)
    assert report.errors == []


@pytest.fixture
def monthly_expiry(db):
    """Monthly expiry, switched on 40 days ago: at least one cutoff has passed, and its
    job has run."""
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate() - timedelta(days=40)
    policy.save()
    expire_points()
    return policy


# Kept figures follow bulk writes and changes of the programme


def test_an_import_refreshes_the_tier_figures_at_once(
    client, login, make_member, django_capture_on_commit_callbacks
):
    # given: three Bronze members, counted by the dashboard
    login("CX agent")
    for code in ("M-1", "M-2", "M-3"):
        make_member(code)
    assert "Bronze 3 Silver 0 Gold 0 Platinum 0" in panel(client, "members-per-tier")

    # when: an import takes every one of them to Platinum
    yesterday = days_ago(1).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        import_file("".join(f"T-{i},M-{i},purchase,9000,{yesterday},,,\n" for i in (1, 2, 3)))

    # then: the chart and the live panel beside it agree
    assert "Bronze 0 Silver 0 Gold 0 Platinum 3" in panel(client, "members-per-tier")
    closest = panel(client, "closest-to-next-tier")
    assert "Every member has reached Platinum." in closest and "No members yet" not in closest


def test_a_threshold_change_and_its_recalculation_refresh_the_tier_figures(
    client, login, make_member, buy, django_capture_on_commit_callbacks
):
    # given: two Silver members with 1,500 lifetime points
    login("Marketer")
    for _ in range(2):
        buy(make_member(), "1500")
    assert "Bronze 0 Silver 2" in panel(client, "members-per-tier")

    # when: Silver is raised to 2,000 points, the dashboard is read meanwhile, and the
    # recalculation (T3) moves the members
    silver = Tier.objects.get(code="silver")
    silver.threshold = 2000
    silver.save()
    assert "Bronze 0 Silver 2" in panel(client, "members-per-tier")  # not moved yet
    with django_capture_on_commit_callbacks(execute=True):
        recalculate_all_tiers()

    # then
    assert "Bronze 2 Silver 0" in panel(client, "members-per-tier")


def test_a_tier_change_refreshes_the_points_at_stake(
    client, login, make_member, buy, monthly_expiry
):
    # given: a Gold member, whose points never expire
    login("Marketer")
    buy(make_member(), "3000", when=days_ago(1))
    assert "0 points at stake 0 members" in panel(client, "next-expiry")

    # when: a marketer makes Gold's points expire
    gold = Tier.objects.get(code="gold")
    gold.points_expire = True
    gold.save()

    # then: 3,000 points and Gold's 250 bonus are at stake
    assert "3,250 points at stake 1 member" in panel(client, "next-expiry")


def test_the_degradation_run_refreshes_the_tier_figures(
    client, login, make_member, buy, degradation, django_capture_on_commit_callbacks
):
    # given: a Silver member 100 days without a purchase, not degraded yet
    login("CX agent")
    buy(make_member(joined_at=days_ago(400)), "1500", when=days_ago(100))
    assert "Bronze 0 Silver 1" in panel(client, "members-per-tier")

    # when: the daily degradation job runs
    with django_capture_on_commit_callbacks(execute=True):
        assert degrade_inactive_members(now=timezone.now()) == 1

    # then
    tiers = panel(client, "members-per-tier")
    assert "Bronze 1 Silver 0" in tiers and "Bronze: 1 degraded." in tiers
    assert "No member drops a tier" in panel(client, "at-risk")


def test_the_expiry_run_refreshes_the_points_at_stake(
    client, login, make_member, buy, django_capture_on_commit_callbacks
):
    # given: 500 Bronze points earned before a cutoff that has passed, not expired yet:
    # the panel names that cutoff, the one the job takes next
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate() - timedelta(days=40)
    policy.save()
    login("CX agent")
    buy(make_member(joined_at=days_ago(400)), "500", when=days_ago(60))
    assert "500 points at stake 1 member" in panel(client, "next-expiry")

    # when: the expiry job processes the passed cutoff (E3)
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_points(now=timezone.now()) == 1

    # then: nothing is left to expire at the next one
    assert "0 points at stake 0 members" in panel(client, "next-expiry")


# Every panel says when its figures are from


def test_every_dashboard_panel_says_when_its_figures_are_from(
    client, login, make_member, buy, degradation, monthly_expiry
):
    # given
    login("CX agent")
    buy(make_member(), "900", when=days_ago(1))

    # when
    page = client.get(reverse("admin:index")).content.decode()

    # then: kept figures say when they were taken, the same time for both; live ones "now"
    def when(panel_id):
        section = page.split(f'id="{panel_id}"')[1]
        return re.search(r'<span class="cx-when">([^<]*)</span>', section).group(1)

    assert re.fullmatch(r"as of \d\d:\d\d", when("members-per-tier"))
    assert when("next-expiry") == when("members-per-tier")
    assert when("closest-to-next-tier") == "now"
    assert when("at-risk") == "now"


# D2: overdue members are at risk


def test_D2_members_overdue_for_degradation_are_at_risk_at_tonights_run(
    client, login, make_member, buy, degradation
):
    # given: degradation by one tier per 90 days without a purchase, the job not run yet
    login("CX agent")
    far_overdue = make_member("M-PLATINUM", joined_at=days_ago(400))
    buy(far_overdue, "9000", when=days_ago(200))  # two periods: Platinum to Silver
    overdue = make_member("M-SILVER-OVERDUE", joined_at=days_ago(400))
    buy(overdue, "1500", when=days_ago(100))
    soon = make_member("M-SILVER-SOON", joined_at=days_ago(400))
    buy(soon, "1500", when=days_ago(85))
    buy(make_member("M-SILVER-ACTIVE", joined_at=days_ago(400)), "1500", when=days_ago(10))

    # when
    at_risk = panel(client, "at-risk")

    # then: counted and listed, soonest first, overdue at tonight's run
    drop_day = timezone.localtime(soon.transactions.get().occurred_at) + timedelta(days=90)
    assert at_risk.startswith("At risk of degradation in the next 14 days now 3 members")
    assert at_risk.endswith(
        "M-PLATINUM Platinum → Silver at tonight's run "
        "M-SILVER-OVERDUE Silver → Bronze at tonight's run "
        f"M-SILVER-SOON Silver → Bronze on {drop_day:%-d %b %Y}"
    )


@pytest.mark.parametrize("members", [3, 30])
def test_the_dashboard_runs_the_same_bounded_queries_however_many_members_are_at_risk(
    client,
    login,
    make_member,
    buy,
    degradation,
    monthly_expiry,
    members,
    django_assert_max_num_queries,
):
    # given: every member overdue for degradation
    login("CX agent")
    for _ in range(members):
        buy(make_member(joined_at=days_ago(400)), "1500", when=days_ago(100))

    # when: the first request, programme and kept figures read afresh (two queries per
    # degradation step: the members nothing holds, and those a hold moves; the expiry
    # preview's totals and largest stakes, kept with them, on PostgreSQL without loops)
    with django_assert_max_num_queries(35):
        at_risk = panel(client, "at-risk")

    # then
    assert f"now {members} members" in at_risk


def test_the_beat_task_computes_out_of_date_figures_before_the_first_visit(
    client, login, make_member, django_capture_on_commit_callbacks, monkeypatch
):
    # given: figures made out of date by an import
    from loyalty_site import sites
    from loyalty_site.tasks import warm_dashboard_task

    login("CX agent")
    make_member("M-1")
    panel(client, "members-per-tier")
    with django_capture_on_commit_callbacks(execute=True):
        import_file(f"T-1,M-1,purchase,9000,{days_ago(1).isoformat()},,,\n")
    counted = []
    counting = sites.members_per_tier
    monkeypatch.setattr(sites, "members_per_tier", lambda r: counted.append(1) or counting(r))

    # when: the task runs (twice: the second finds them up to date), then a visit
    warm_dashboard_task()
    warm_dashboard_task()
    shown = panel(client, "members-per-tier")

    # then: computed once, by the task; the visit shows them without computing
    assert counted == [1]
    assert "Bronze 0 Silver 0 Gold 0 Platinum 1" in shown


def test_a_status_matched_member_is_not_counted_as_degraded(client, login, make_member, buy, staff):
    # given a Silver member matched to Gold, degradation off
    member = make_member()
    buy(member, "1200", when=days_ago(1))
    gold = Tier.objects.get(code="gold")
    until = timezone.localdate() + timedelta(days=30)
    grant_status(member=member, tier=gold, until=until, reason="Card", by=staff)
    login("Marketer")

    # when / then: Gold counts the member, none of them degraded
    page = client.get(reverse("admin:index"))
    row = next(r for r in page.context["tiers"] if r["tier"].code == "gold")
    assert (row["members"], row["degraded"]) == (1, 0)


def test_who_is_at_stake_is_linked_only_for_those_who_may_open_it(client, login, monthly_expiry):
    login("CX agent")  # may not open the expiry policy's preview
    assert "Who and by tier" not in panel(client, "next-expiry")
    page = client.get(reverse("admin:points_expirypolicy_preview"))
    assert page.status_code == 403
    assert "This page is not for your role" in page.content.decode()
    assert "Back to the dashboard" in page.content.decode()


def test_at_risk_lists_the_member_who_drops_soonest_even_behind_status_matched_members(
    client, login, make_member, buy, staff, degradation
):
    # given: ten Silver members long inactive but held at Gold by a status match whose
    # last day is in 11 days (they drop the day after it, in 12 days) ...
    gold = Tier.objects.get(code="gold")
    last_day = timezone.localdate() + timedelta(days=11)
    for i in range(10):
        held = make_member(f"M-HELD-{i:02}", joined_at=days_ago(400))
        buy(held, "1500", when=days_ago(200))
        grant_status(member=held, tier=gold, until=last_day, reason="Competitor card", by=staff)
    # ... and one Silver member whose 90 days without a purchase end in 5 days
    soon = make_member("M-SOONEST", joined_at=days_ago(400))
    buy(soon, "1500", when=days_ago(85))
    login("CX agent")

    # when
    at_risk = panel(client, "at-risk")

    # then: 11 members are counted, and the one who drops first is on the list, ahead
    # of the ten held members who drop a week later
    assert "11 members" in at_risk
    assert "M-SOONEST" in at_risk


def test_members_per_tier_counts_a_member_degraded_below_the_qualified_tier_as_degraded(
    client, login, make_member, buy, staff, degradation
):
    # given: a Silver member matched to Gold for most of a year, who then earns
    # Platinum and stops buying: 90 days later the nightly job drops them to Gold (the
    # match keeps them from going lower)
    member = make_member("M-MATCHED", joined_at=days_ago(300))
    buy(member, "1100", when=days_ago(299))  # Silver
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=member,
        tier=gold,
        until=timezone.localdate() + timedelta(days=200),
        reason="Competitor card",
        by=staff,
        now=days_ago(150),
    )
    buy(member, "4000", when=days_ago(149))  # x2 at Gold: 8,000 more, Platinum
    degrade_inactive_members()
    member.refresh_from_db()
    assert (member.qualified_tier.code, member.effective_tier.code) == ("platinum", "gold")
    login("Marketer")

    # when
    page = client.get(reverse("admin:index"))
    members_panel = panel(client, "members-per-tier")

    # then: the member list reads "Gold (qualified Platinum)"; the dashboard counts the
    # member in Gold and, as for any member below the tier they qualify for, degraded
    row = next(r for r in page.context["tiers"] if r["tier"].code == "gold")
    assert (row["members"], row["degraded"]) == (1, 1)
    assert "Gold: 1 degraded." in members_panel


def test_one_member_is_counted_as_one_member(client, login, make_member):
    # given
    make_member("M-ONLY")
    login("Marketer")

    # when
    shown = panel(client, "members-per-tier")

    # then
    assert "1 member by effective tier." in shown


def test_the_expiry_preview_is_kept_a_few_minutes_and_says_when_it_was_taken(
    client, login, make_member, buy, monthly_expiry, django_capture_on_commit_callbacks
):
    # given: the preview seen once, with one member at stake
    login("Marketer")
    url = reverse("admin:points_expirypolicy_preview")
    buy(make_member("M-1"), "10", when=days_ago(1))
    client.get(url)

    # when: a till's purchase, then an import
    buy(make_member("M-2"), "20", when=days_ago(1))
    kept = client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        import_file(f"T-1,M-2,purchase,30,{days_ago(1).isoformat()},,,\n")
    taken_again = client.get(url).content.decode()

    # then: the purchase waits for the figures to be taken again, the import does not
    assert "<strong>1</strong> member, <strong>10</strong> points at stake" in kept
    assert "Figures as of" in kept
    assert "<strong>2</strong> members, <strong>60</strong> points at stake" in taken_again


def test_the_beat_task_renews_the_figures_before_a_visit_would_wait_for_them(
    client, login, make_member, monkeypatch
):
    # given: figures taken by the beat task (every minute), counted from here on
    from types import SimpleNamespace

    from core import figures
    from loyalty_site import sites
    from loyalty_site.tasks import warm_dashboard_task

    login("CX agent")
    make_member("M-1")
    warm_dashboard_task()
    counted, counting = [], sites.members_per_tier
    monkeypatch.setattr(sites, "members_per_tier", lambda r: counted.append(1) or counting(r))
    start = timezone.now()

    def minutes_later(minutes):
        later = start + timedelta(minutes=minutes)
        monkeypatch.setattr(figures, "timezone", SimpleNamespace(now=lambda: later))

    # when: the task runs 8 and 10 minutes later, visits at 20 and 26 minutes
    visits = []
    for minutes in [8, 10]:
        minutes_later(minutes)
        warm_dashboard_task()
    ran = len(counted)
    for minutes in [20, 26]:
        minutes_later(minutes)
        visits.append(panel(client, "members-per-tier"))

    # then: the task renewed them once 9 minutes old; the visit at 20 minutes waited for
    # nothing (10 minutes old); at 26 (16 minutes old, the task stopped), the visit took
    # them itself
    assert ran == 1
    assert len(counted) == 2
    assert all("Bronze 1" in shown for shown in visits)


def test_the_kept_expiry_preview_names_members_as_they_are_now(
    client, login, make_member, buy, monthly_expiry, staff
):
    # given: the preview seen once, listing a member at stake
    from members.services import erase_member

    login("Marketer")
    url = reverse("admin:points_expirypolicy_preview")
    member = make_member("M-GONE")
    buy(member, "10", when=days_ago(1))
    seen = client.get(url).content.decode()

    # when the member is erased (their right to be forgotten), within the kept minutes
    erase_member(member=member, by=staff)
    kept = client.get(url).content.decode()

    # then the kept figures hold no personal data: the list names them as they are now
    assert "M-GONE" in seen
    assert "<strong>1</strong> member, <strong>10</strong> points at stake" in kept
    assert "M-GONE" not in kept


def test_erased_accounts_are_neither_close_to_a_tier_nor_at_risk(
    client, login, make_member, buy, degradation, admin_user
):
    """Found by an audit: an erased account, which earns nothing more and cannot be
    contacted, topped "Closest to the next tier" and was counted at risk."""
    from core.figures import stale
    from members.services import erase_member

    # given: two Silver members overdue for degradation, 900 points to Gold each
    login("CX agent")
    kept, erased = (make_member(code, joined_at=days_ago(400)) for code in ("M-KEPT", "M-GONE"))
    buy(kept, "2100", when=days_ago(100))
    buy(erased, "2100", when=days_ago(100))
    # when: one is erased at the customer's request
    erase_member(member=erased, by=admin_user)
    stale()
    # then: only the other is listed, and counted
    closest, at_risk = panel(client, "closest-to-next-tier"), panel(client, "at-risk")
    assert "M-KEPT" in closest and "ERASED-" not in closest
    assert "now 1 member" in at_risk and "M-KEPT" in at_risk and "ERASED-" not in at_risk
