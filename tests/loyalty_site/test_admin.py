"""The plain admin: the demo can be explored, the ledger is read-only."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import JobChunk, JobRun
from members.models import Member, TierChange
from points.models import LedgerEntry
from tests.conftest import give_return, postgres_only, run_together, summary
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def test_member_list_shows_tiers_and_balances_in_bounded_queries(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    for _ in range(30):
        buy(make_member(), "1500")
    with django_assert_max_num_queries(12):
        page = client_admin.get(reverse("admin:members_member_changelist"))
    assert page.status_code == 200
    assert "Silver" in page.content.decode() and "1,600" in page.content.decode()
    assert b'value="delete_selected"' not in page.content  # members never vanish


def test_member_list_of_degraded_members_runs_bounded_queries(
    client_admin, make_member, buy, degradation, django_assert_max_num_queries
):
    # given 30 members degraded from Silver (their effective tier is not the qualified)
    from tiers.services import degrade_inactive_members

    start = timezone.now() - timedelta(days=200)
    for _ in range(30):
        buy(make_member(joined_at=start), "1000", when=start)
    assert degrade_inactive_members() == 30

    # then the list names both tiers of each, in as many queries as for one
    with django_assert_max_num_queries(12):
        page = client_admin.get(reverse("admin:members_member_changelist"))
    assert page.content.decode().count("Bronze (qualified Silver)") == 30


def test_member_page_shows_tier_history_and_the_ledger(client_admin, member, buy):
    buy(member, "1000")
    page = client_admin.get(reverse("admin:members_member_change", args=[member.pk])).content
    assert b"Upgrade" in page and b"Welcome to Silver" in page
    ledger = client_admin.get(
        reverse("admin:points_ledgerentry_changelist") + f"?member__id__exact={member.pk}"
    )
    assert ledger.status_code == 200 and b"Welcome to Silver" in ledger.content


def test_ledger_entries_are_read_only_in_the_admin(client_admin, member, buy):
    buy(member, "10")
    entry = LedgerEntry.objects.get(member=member)
    url = reverse("admin:points_ledgerentry_change", args=[entry.pk])
    page = client_admin.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client_admin.post(url, {"points": "9999"})
    assert LedgerEntry.objects.get(pk=entry.pk).points == 10
    assert client_admin.get(reverse("admin:points_ledgerentry_add")).status_code == 403
    assert (
        client_admin.post(
            reverse("admin:points_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_adding_a_member_in_the_admin_enrols_in_the_entry_tier(client_admin, tiers):
    response = client_admin.post(
        reverse("admin:members_member_add"),
        {
            "external_id": "M-NEW",
            "email": "new@example.com",
            "first_name": "Nora",
            "last_name": "Vidal",
            "phone": "",
            "joined_at_0": "2026-03-01",
            "joined_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content
    member = Member.objects.get(external_id="M-NEW")
    assert member.qualified_tier.code == "bronze"
    assert TierChange.objects.filter(member=member, reason="joined").exists()


# The add-member form of an agent at the desk, for a code the web shop enrols meanwhile.
DESK_FORM = {
    "external_id": "M-DUP",
    "email": "desk@example.com",
    "first_name": "Nora",
    "joined_at_0": "2026-03-01",
    "joined_at_1": "10:00",
}


def test_a_member_enrolled_by_another_door_while_the_form_is_saved_is_a_message(
    client_admin, tiers, monkeypatch
):
    # given: the web shop enrols the same code between the form's check and its save
    from loyalty_site import member_page
    from members.services import enroll_member

    def web_shop_first(**fields):
        enroll_member(external_id=fields["external_id"], email="shop@example.com")
        return enroll_member(**fields)

    monkeypatch.setattr(member_page, "enroll_member", web_shop_first)
    # when
    page = client_admin.post(reverse("admin:members_member_add"), DESK_FORM, follow=True)
    # then: the agent reads why, and the form wrote nothing (the simulated web shop's
    # enrolment shared its transaction here, so it is gone too)
    assert page.status_code == 200
    assert "Member with this Customer code already exists." in page.content.decode()
    assert not Member.objects.filter(email="desk@example.com").exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_code_enrolled_by_the_web_shop_while_the_form_is_saved_keeps_what_the_agent_typed(
    client_admin, tiers, monkeypatch
):
    # given: the web shop enrols (and commits) the same code between the form's check
    # and its save
    from loyalty_site import member_page
    from members.services import enroll_member

    def web_shop_first(**fields):
        run_together(1, lambda _: enroll_member(external_id="M-DUP", email="shop@example.com"))
        return enroll_member(**fields)

    monkeypatch.setattr(member_page, "enroll_member", web_shop_first)
    # when
    page = client_admin.post(reverse("admin:members_member_add"), DESK_FORM)
    # then: the form again, with what the agent typed and why it cannot be saved
    assert page.status_code == 200
    html = page.content.decode()
    assert "Member with this Customer code already exists." in html
    assert 'value="desk@example.com"' in html and 'value="Nora"' in html
    assert Member.objects.get(external_id="M-DUP").email == "shop@example.com"


def test_T3_changing_a_threshold_in_the_admin_recalculates_tiers(
    client_admin, member, buy, django_capture_on_commit_callbacks
):
    buy(member, "2500")
    gold = Tier.objects.get(code="gold")
    form = {
        "name": "Gold",
        "code": "gold",
        "threshold": "2000",
        "multiplier": "2",
        "upgrade_bonus_points": "250",
        "benefits": "",
    }
    url = reverse("admin:tiers_tier_change", args=[gold.pk])
    shown = client_admin.post(url, form).context["programme"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_admin.post(url, {**form, "_confirm_threshold": shown})
    assert response.status_code == 302, response.content
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "gold"
    assert TierChange.objects.filter(member=member, reason="rules_changed").exists()


GOLD_AT_2000 = {
    "name": "Gold",
    "code": "gold",
    "threshold": "2000",
    "multiplier": "2",
    "upgrade_bonus_points": "250",
    "benefits": "",
}


def confirm_gold_at_2000(client):
    """A marketer lowers Gold to 2,000 and confirms the preview."""
    url = reverse("admin:tiers_tier_change", args=[Tier.objects.get(code="gold").pk])
    shown = client.post(url, GOLD_AT_2000).context["programme"]
    return client.post(url, {**GOLD_AT_2000, "_confirm_threshold": shown}, follow=True)


def test_T3_a_write_before_the_recalculation_moves_the_member_as_the_rules_changed(
    client_admin, member, buy
):
    # given Silver at 2,500 lifetime points; Gold lowered to 2,000, the job not run yet
    bought = buy(member, "2500")
    confirm_gold_at_2000(client_admin)

    # when the member's next ledger write is a small return
    give_return(member, bought, "10")

    # then: Gold by the rules change, no bonus; the return changes nothing more
    last = TierChange.objects.filter(member=member).latest("pk")
    assert (last.reason, last.to_tier.code) == ("rules_changed", "gold")
    assert not LedgerEntry.objects.filter(member=member, reason="Welcome to Gold").exists()
    assert summary(member)["points_to_next_tier"] == 8000 - 2490


@pytest.mark.parametrize("threshold", ["3000", "5000", "0"])
def test_T1_a_threshold_keeps_its_tier_in_its_place_among_the_tiers(client_admin, tiers, threshold):
    # (the highest tier a member reached, and who is degraded, are read by rank: Silver
    # above Gold would pay no Gold bonus and no purchase would restore a degraded member)
    silver = Tier.objects.get(code="silver")
    form = {
        "name": "Silver",
        "code": "silver",
        "threshold": threshold,
        "multiplier": "1.5",
        "upgrade_bonus_points": "100",
        "benefits": "",
    }
    page = client_admin.post(reverse("admin:tiers_tier_change", args=[silver.pk]), form)
    assert page.status_code == 200
    assert (
        "Silver keeps its place among the tiers: a threshold between Bronze (0) and Gold "
        "(3,000). To rank the tiers otherwise, add a new tier."
    ) in page.content.decode().replace("&#x27;", "'")
    assert Tier.objects.get(code="silver").threshold == 1000


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # queued as the save commits
def test_T3_with_the_task_queue_down_a_threshold_is_saved_and_requalified_tonight(
    client_admin, member, buy, monkeypatch
):
    # given the task queue out of reach
    from kombu.exceptions import OperationalError

    from tiers import tasks

    def down(*args, **kwargs):
        raise OperationalError("broker down")

    monkeypatch.setattr(tasks.recalculate_all_tiers_task, "delay", down)
    buy(member, "2500")

    # when a marketer confirms a new threshold
    page = confirm_gold_at_2000(client_admin)

    # then saved, and told; the nightly beat row moves the member
    assert page.status_code == 200
    assert Tier.objects.get(code="gold").threshold == 2000
    assert "members will be requalified under the new thresholds tonight" in (page.content.decode())
    from django_celery_beat.models import PeriodicTask

    nightly = PeriodicTask.objects.get(name="Requalify members")
    assert nightly.task == "tiers.tasks.recalculate_all_tiers_task" and nightly.enabled
    tasks.recalculate_all_tiers_task()
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "gold"


def test_T1_a_new_tier_added_in_the_admin_is_previewed_then_saved_and_members_reach_it(
    client_admin, member, buy, django_capture_on_commit_callbacks
):
    # given a member with 2,500 lifetime points (Silver)
    buy(member, "2500")
    form = {
        "name": "Silver Plus",
        "code": "silver-plus",
        "threshold": "2000",
        "multiplier": "1.75",
        "upgrade_bonus_points": "0",
        "benefits": "",
    }
    url = reverse("admin:tiers_tier_add")

    # when: the marketer posts the new tier, sees who moves, and confirms
    preview = client_admin.post(url, form)
    previewed_only = not Tier.objects.filter(code="silver-plus").exists()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client_admin.post(url, {**form, "_confirm_threshold": preview.context["programme"]})

    # then
    assert preview.status_code == 200
    assert preview.context["moves"] == {"up": 1, "down": 0, "kept": 0}
    assert previewed_only
    assert saved.status_code == 302, saved.content
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "silver-plus"


def test_expiry_preview_page_shows_the_next_cutoff_and_who_loses_what(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    from points.models import ExpiryPolicy

    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()
    policy.save()
    members = [make_member() for _ in range(60)]
    for m in members:
        buy(m, "120", when=timezone.now() - timedelta(days=1))
    with django_assert_max_num_queries(16):
        page = client_admin.get(reverse("admin:points_expirypolicy_preview"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Next cutoff: end of" in html
    assert "<strong>60</strong> members, <strong>7,200</strong> points at stake" in html
    assert "Page 1 of 2" in html


def test_the_expiry_preview_lists_the_largest_stakes_and_counts_every_member(
    client_admin, make_member, buy, monkeypatch
):
    # given: five members at stake, the page listing the three largest
    from points import expiry_selectors
    from points.models import ExpiryPolicy

    monkeypatch.setattr(expiry_selectors, "PREVIEW_LARGEST", 3)
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()
    policy.save()
    for n, amount in enumerate(["10", "50", "30", "40", "20"]):
        buy(make_member(f"M-{n}"), amount, when=timezone.now() - timedelta(days=1))

    # when
    html = client_admin.get(reverse("admin:points_expirypolicy_preview")).content.decode()

    # then: every member counted, the three largest listed, largest first
    assert "<strong>5</strong> members, <strong>150</strong> points at stake" in html
    assert "The 3 who would lose most" in html
    listed = re.findall(r">(M-\d)</a>", html)
    assert listed == ["M-1", "M-3", "M-2"]


def test_policies_open_on_their_single_row(client_admin, db):
    page = client_admin.get(reverse("admin:tiers_degradationpolicy_changelist"))
    assert page.status_code == 302 and page.url.endswith("/1/change/")
    page = client_admin.get(reverse("admin:points_expirypolicy_changelist"), follow=True)
    assert b"Preview the next expiry" in page.content


def test_switching_expiry_on_in_the_admin_starts_today(client_admin, db):
    from django.utils import timezone

    from points.models import ExpiryPolicy

    policy = ExpiryPolicy.current()
    url = reverse("admin:points_expirypolicy_change", args=[policy.pk])
    posted = {"cycle": "quarterly", "starts_on": "", "reminder_days": "14"}
    shown = client_admin.post(url, posted).context["fingerprint"]
    response = client_admin.post(url, {**posted, "_confirm_policy": shown})
    assert response.status_code == 302, response.content
    assert ExpiryPolicy.current().starts_on == timezone.localdate()


def test_a_marketer_limits_a_campaign_to_tiers_and_channels(client_admin, tiers):
    from points.models import Campaign

    response = client_admin.post(
        reverse("admin:points_campaign_add"),
        {
            "name": "Gold online week",
            "multiplier": "3",
            "starts_at_0": "2026-03-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2026-03-08",
            "ends_at_1": "00:00:00",
            "tiers": [tiers["gold"].pk],
            "channels": ["ecommerce"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    campaign = Campaign.objects.get(name="Gold online week")
    assert campaign.channels == ["ecommerce"]
    assert list(campaign.tiers.values_list("code", flat=True)) == ["gold"]


def test_operations_see_how_far_each_chunked_job_run_got(client_admin, db):
    from django.utils import timezone

    from core.models import JobChunk, JobRun

    run = JobRun.objects.create(job="expiry", key="2026-03-31")
    JobChunk.objects.create(run=run, first_id=1, last_id=500, done_at=timezone.now(), result=3)
    JobChunk.objects.create(run=run, first_id=501, last_id=1000)

    page = client_admin.get(reverse("admin:core_jobrun_changelist"))

    assert page.status_code == 200
    assert "Cutoff of 31 Mar 2026" in page.content.decode() and "1 of 2" in page.content.decode()
    assert "2026-03-31" not in page.content.decode()
    assert client_admin.get(reverse("admin:core_jobrun_add")).status_code == 403


def test_the_job_runs_page_tells_a_stalled_run_from_a_running_one(client_admin):
    """Found by an audit: "3 of 4" read the same for a run at work and one whose chunk
    messages were lost, which only the job's next run finishes."""
    now = timezone.now()
    moving = JobRun.objects.create(job="expiry", key="2026-03-31", started_at=now)
    JobChunk.objects.create(run=moving, first_id=1, last_id=500, done_at=now, result=3)
    JobChunk.objects.create(run=moving, first_id=501, last_id=1000)
    stalled = JobRun.objects.create(
        job="degradation", key="2026-03-30", started_at=now - timedelta(hours=5)
    )
    JobChunk.objects.create(run=stalled, first_id=1, last_id=500)

    JobRun.objects.create(job="degradation", key="2026-03-31T01:00:00+00:00", started_at=now)

    page = client_admin.get(reverse("admin:core_jobrun_changelist")).content.decode()

    assert "As of 31 Mar 2026 03:00" in page  # a degradation's instant, in Madrid (CEST)
    at = f"{timezone.localtime(stalled.started_at):%-d %b %Y %H:%M}"
    assert f"Stalled: nothing done since {at}; the job&#x27;s next run finishes it" in page
    assert f"Running (last chunk done {timezone.localtime(now):%-d %b %Y %H:%M})" in page


def test_the_job_runs_page_reads_a_bounded_number_of_queries_whatever_the_runs(
    client_admin, django_assert_max_num_queries
):
    """Found at a million members: a join of every run with its chunks took 1 s at
    30,000 runs; the page now reads the chunks of its own runs."""
    now = timezone.now()
    runs = JobRun.objects.bulk_create(
        JobRun(job="expiry", key=f"2026-{1 + n % 12:02d}-28-{n}", started_at=now)
        for n in range(150)
    )
    JobChunk.objects.bulk_create(
        JobChunk(run=run, first_id=first, last_id=first + 99, done_at=now if first else None)
        for run in runs
        for first in (0, 100, 200)
    )

    with django_assert_max_num_queries(8):
        page = client_admin.get(reverse("admin:core_jobrun_changelist"))

    assert page.status_code == 200
    assert page.content.decode().count("2 of 3") == 100  # a page of runs, each counted


def test_P3_a_tier_a_campaign_is_limited_to_cannot_be_deleted_until_the_campaign_lets_go(
    client_admin, tiers
):
    # given a running campaign for Platinum only
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from points.models import Campaign

    now, platinum = timezone.now(), tiers["platinum"]
    campaign = Campaign.objects.create(
        name="Platinum triple",
        multiplier=Decimal("3"),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=10),
    )
    campaign.tiers.set([platinum])
    url = reverse("admin:tiers_tier_delete", args=[platinum.pk])

    # when
    page = client_admin.get(url)
    client_admin.post(url, {"post": "yes"})

    # then: refused, naming the campaign; once it lets go, the tier can go
    assert page.context["protected"] == [
        "Campaign “Platinum triple (x3)” is limited to Platinum: untick it there first"
    ]
    assert Tier.objects.filter(pk=platinum.pk).exists()
    campaign.tiers.clear()
    assert client_admin.post(url, {"post": "yes"}).status_code == 302
    assert not Tier.objects.filter(pk=platinum.pk).exists()


def test_T1_a_tier_members_hold_cannot_be_deleted_and_the_page_says_how_many(
    client, login, make_member, buy, django_assert_max_num_queries
):
    # given two Silver members, and a marketer on Silver's delete page
    for _ in range(2):
        buy(make_member(), "1000")
    login("Marketer")
    silver = Tier.objects.get(code="silver")
    url = reverse("admin:tiers_tier_delete", args=[silver.pk])

    # when
    with django_assert_max_num_queries(20):  # counted, whatever the number of members
        page = client.get(url)
    client.post(url, {"post": "yes"})

    # then: what names it, counted; no talk of a permission to delete members
    assert page.status_code == 200
    assert page.context["protected"] == ["Members: 2 name Silver", "Tier changes: 2 name Silver"]
    assert "permission to delete" not in page.content.decode()
    assert Tier.objects.filter(pk=silver.pk).exists()


def test_T1_a_tier_nobody_ever_held_can_be_deleted_after_the_nightly_figures(
    client, login, make_member, buy
):
    # given a new tier nobody reached, counted (0 members) by the analytics job
    from points.services.snapshots import take_snapshots

    member = make_member(joined_at=timezone.now() - timedelta(days=3))
    buy(member, "100", when=timezone.now() - timedelta(days=2))
    diamond = Tier.objects.create(name="Diamond", code="diamond", threshold=50000, multiplier=4)
    take_snapshots()

    # when a marketer deletes it
    login("Marketer")
    url = reverse("admin:tiers_tier_delete", args=[diamond.pk])
    page = client.get(url)
    client.post(url, {"post": "yes"})

    # then it goes
    assert not page.context["protected"]
    assert not Tier.objects.filter(pk=diamond.pk).exists()


def test_the_tier_list_writes_thresholds_and_bonuses_as_numbers_are_read(client_admin, tiers):
    page = client_admin.get(reverse("admin:tiers_tier_changelist")).content.decode()
    assert ">1,000<" in page and ">3,000<" in page and ">8,000<" in page


def test_lists_write_times_on_the_24_hour_clock_as_the_member_pages_do(client_admin, member, buy):
    buy(member, "1200", when=timezone.now().replace(hour=22, minute=5))
    page = client_admin.get(reverse("admin:members_tierchange_changelist")).content.decode()
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2}<", page)
    assert "p.m." not in page and "a.m." not in page


def test_the_joining_date_is_fixed_once_enrolled(admin_client, make_member):
    # given a member who joined on 1 March (inactivity counts from it, history is dated by it)
    from tests.conftest import at

    member = make_member("M-J", joined_at=at("2026-03-01"))
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))
    form = page.context["adminform"].form

    # when the change form is sent with another date
    admin_client.post(
        reverse("admin:members_member_change", args=[member.pk]),
        {**{name: form[name].value() or "" for name in form.fields}, "joined_at_0": "2026-06-01"},
    )

    # then it stays, and the page offers no field to change it
    member.refresh_from_db()
    assert member.joined_at == at("2026-03-01")
    assert "joined_at" not in form.fields
