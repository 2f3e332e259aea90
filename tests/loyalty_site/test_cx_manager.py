"""The CX Manager: roles, member page, assign points, redeem, and pages that stay cheap
whatever the number of rows (the dashboard and the tiers' pages: test_cx_manager_programme)."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from core.days import end_of
from core.paginator import CappedPaginator
from loyalty_site.demo import load_catalogue
from members.models import Member
from points.models import LedgerEntry
from points.services import adjust_points
from rewards.models import Redemption, Reward
from tests.conftest import summary
from tiers.models import Tier
from tiers.selectors import Ranking, drop_day_of, members_to_degrade, next_degradation

pytestmark = pytest.mark.django_db


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def assign(client, member, points, reason="Goodwill: late delivery", token=None, **extra):
    page = client.get(member_page(member))
    definition = page.context["assign_form"]["definition"].initial
    return client.post(
        reverse("admin:members_member_assign_points", args=[member.pk]),
        {
            "points": points,
            "reason": reason,
            "definition": definition.pk if hasattr(definition, "pk") else definition,
            "token": token or uuid.uuid4(),
            **extra,
        },
    )


# Roles


def test_an_agent_cannot_open_the_tier_page_and_can_assign_points(client, login, member):
    agent = login("CX agent")
    gold = Tier.objects.get(code="gold")
    assert client.get(reverse("admin:tiers_tier_change", args=[gold.pk])).status_code == 403
    assert client.post(reverse("admin:tiers_tier_change", args=[gold.pk]), {}).status_code == 403
    for page in ["points_campaign_add", "rewards_reward_add", "points_pointdefinition_add"]:
        assert client.get(reverse(f"admin:{page}")).status_code == 403

    response = assign(client, member, 250)

    assert response.status_code == 302
    assert summary(member)["available"] == 250
    entry = LedgerEntry.objects.get(member=member, kind="adjustment")
    assert entry.created_by == agent and entry.reason == "Goodwill: late delivery"


def test_a_marketer_edits_tiers_and_cannot_assign_points(client, login, member):
    login("Marketer")
    gold = Tier.objects.get(code="gold")
    page = client.get(reverse("admin:tiers_tier_change", args=[gold.pk]))
    assert page.status_code == 200 and b'name="_save"' in page.content

    response = client.post(
        reverse("admin:members_member_assign_points", args=[member.pk]),
        {"points": 250, "reason": "Nice", "token": uuid.uuid4()},
    )

    assert response.status_code == 403
    assert b"Assign points" not in client.get(member_page(member)).content
    assert summary(member)["available"] == 0


# Assign points (P6)


def test_assigning_points_shows_the_new_balance_and_is_attributable(client, login, member):
    agent = login("CX agent")

    response = assign(client, member, 250)

    page = client.get(response.url)
    html = page.content.decode()
    assert "Assigned +250 points: Goodwill: late delivery" in html
    assert f"{member.external_id} now has 250 points available" in html
    assert '<div class="cx-big" id="available">250</div>' in html
    log = LogEntry.objects.get(object_id=str(member.pk))
    assert log.user == agent and "Assigned +250 points" in log.get_change_message()


def test_one_point_assigned_or_removed_is_said_in_the_singular(client, login, member):
    login("CX agent")

    assert (
        "Assigned +1 point: Goodwill" in client.get(assign(client, member, 1).url).content.decode()
    )
    assert (
        "Assigned -1 point: Goodwill" in client.get(assign(client, member, -1).url).content.decode()
    )


def test_a_double_submit_of_assign_points_adds_the_points_once(client, login, member):
    login("CX agent")
    token = uuid.uuid4()

    first = assign(client, member, 250, token=token)
    second = assign(client, member, 250, token=token)

    assert first.status_code == second.status_code == 302
    assert LedgerEntry.objects.filter(member=member, kind="adjustment").count() == 1
    assert summary(member)["available"] == 250
    assert "nothing was applied twice" in client.get(second.url).content.decode()


def test_a_refused_adjustment_shows_why_writes_nothing_and_can_be_sent_again(client, login, member):
    login("CX agent")
    token = uuid.uuid4()

    refused = assign(client, member, -100, token=token)

    assert refused.status_code == 200
    assert f"{member.external_id} has only 0 available" in refused.content.decode()
    assert refused.context["assign_form"]["points"].value() == "-100"  # input kept
    assert not LedgerEntry.objects.filter(member=member).exists()
    assert assign(client, member, 100, token=token).status_code == 302
    assert summary(member)["available"] == 100


def test_assigning_points_needs_a_reason(client, login, member):
    login("CX agent")
    response = assign(client, member, 50, reason="  ")
    assert response.status_code == 200 and b"Say why the points are adjusted" in response.content
    assert not LedgerEntry.objects.filter(member=member).exists()


# Catalogue and redemption (W2, W3)


@pytest.fixture
def rewards(tiers):
    load_catalogue(tiers)
    from rewards.models import Reward

    return {r.name: r for r in Reward.objects.all()}


def test_the_member_page_shows_locked_rewards_disabled_with_their_reason(
    client, login, member, rewards
):
    agent = login("CX agent")
    adjust_points(member=member, points=20_000, reason="Test", by=agent)
    html = client.get(member_page(member)).content.decode()
    weekend = rewards["Weekend in Seville"]
    radio = f'name="reward" value="{weekend.pk}"'
    row = html[html.index(radio) - 200 : html.index(radio) + 400]
    assert "disabled" in row and "Needs Platinum" in row
    coffee = rewards["Coffee voucher"]
    radio = f'name="reward" value="{coffee.pk}"'
    row = html[html.index(radio) : html.index(radio) + 300]
    assert "disabled" not in row and "Available" in row


def test_redeeming_from_the_member_page_spends_once_per_form(client, login, member, rewards):
    agent = login("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    coffee = rewards["Coffee voucher"]
    page = client.get(member_page(member))
    token = page.context["redeem_form"]["token"].initial
    url = reverse("admin:members_member_redeem", args=[member.pk])

    asked = client.post(url, {"reward": coffee.pk, "token": token})  # the confirmation first
    assert "Redeem this reward?" in asked.content.decode()
    assert f"after this redemption, {1_000 - coffee.points_cost:,}" in asked.content.decode()
    assert not Redemption.objects.exists()
    sent = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked.content.decode())
    )
    assert (sent["cost"], sent["token"]) == ("150", str(token))  # the confirmation's own form
    for _ in range(2):
        response = client.post(url, {**sent, "_confirm": "1"})

    assert response.status_code == 302
    redemption = Redemption.objects.get(member=member)
    assert redemption.reward == coffee and redemption.redeemed_by == agent
    assert summary(member)["available"] == 1_000 - coffee.points_cost
    assert f"Redeemed {coffee.name}" in client.get(member_page(member)).content.decode()


def test_yes_redeem_150_points_never_spends_another_cost(client, login, member, rewards):
    # given: the confirmation says "Yes, redeem 150 points"
    agent = login("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    coffee = rewards["Coffee voucher"]
    url = reverse("admin:members_member_redeem", args=[member.pk])
    asked = client.post(url, {"reward": coffee.pk, "token": uuid.uuid4()}).content.decode()
    assert "Yes, redeem 150 points" in asked
    sent = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked))
    # when: a marketer raises the cost to 900 before the agent clicks
    Reward.objects.filter(pk=coffee.pk).update(points_cost=900)
    done = client.post(url, sent, follow=True).content.decode()
    # then: nothing is spent, and the agent reads why
    assert "Coffee voucher now costs 900 points, not 150: nothing was redeemed." in done
    assert not Redemption.objects.exists()
    assert summary(member)["available"] == 1_000


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"voucher_value": Decimal("6.00")},
            "5 euro voucher now gives a voucher worth 6.00, valid for 90 days, not worth 5.00, "
            "valid for 90 days: nothing was redeemed.",
        ),
        (
            {"voucher_valid_days": 1},
            "5 euro voucher now gives a voucher worth 5.00, valid for 1 day, not worth 5.00, "
            "valid for 90 days: nothing was redeemed.",
        ),
    ],
    ids=["value", "days"],
)
def test_yes_redeem_never_gives_another_voucher_than_the_one_shown(
    client, login, member, rewards, change, message
):
    """Found by an audit: the confirmation read out "worth 5.00, valid for 90 days", and a
    marketer's change meanwhile issued the voucher on the new terms without a word."""
    # given: the confirmation of a 5 euro voucher
    agent = login("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    five = rewards["5 euro voucher"]
    url = reverse("admin:members_member_redeem", args=[member.pk])
    asked = client.post(url, {"reward": five.pk, "token": uuid.uuid4()}).content.decode()
    assert "worth 5.00, valid for 90 days after today" in " ".join(asked.split())
    sent = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked))
    # when: a marketer changes the voucher before the agent clicks
    Reward.objects.filter(pk=five.pk).update(**change)
    done = client.post(url, sent, follow=True).content.decode()
    # then: nothing is spent, and the agent reads why
    assert message in " ".join(done.split())
    assert not Redemption.objects.exists()
    assert summary(member)["available"] == 1_000


@pytest.mark.parametrize(
    "shown", [{}, {"cost": "900"}], ids=["without its cost", "without its voucher's days"]
)
def test_a_confirmation_without_what_it_showed_spends_nothing(
    client, login, member, rewards, shown
):
    # given: a "yes, redeem" sent without the cost or the voucher the confirmation
    # showed (a form made by hand, or a page of an older version)
    agent = login("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    coffee = rewards["Coffee voucher"]
    Reward.objects.filter(pk=coffee.pk).update(points_cost=900)
    url = reverse("admin:members_member_redeem", args=[member.pk])
    # when
    sent = {"reward": coffee.pk, "token": uuid.uuid4(), "_confirm": "1", **shown}
    done = client.post(url, sent, follow=True).content.decode()
    # then: nothing is spent at a cost, nor on terms, the agent never read out
    assert "Choose the reward again: the confirmation did not say its cost and voucher." in done
    assert not Redemption.objects.exists()
    assert summary(member)["available"] == 1_000


def test_redeeming_a_locked_reward_says_why_and_spends_nothing(client, login, member, rewards):
    login("CX agent")
    weekend = rewards["Weekend in Seville"]
    response = client.post(
        reverse("admin:members_member_redeem", args=[member.pk]),
        {"reward": weekend.pk, "token": uuid.uuid4()},
        follow=True,
    )
    assert "Weekend in Seville: Needs Platinum." in response.content.decode()
    assert not Redemption.objects.exists()


def test_a_marketer_cannot_redeem(client, login, member, rewards):
    login("Marketer")
    response = client.post(
        reverse("admin:members_member_redeem", args=[member.pk]),
        {"reward": rewards["Coffee voucher"].pk, "token": uuid.uuid4()},
    )
    assert response.status_code == 403


# Member page


def test_one_point_to_the_next_tier_is_said_in_the_singular(client, login, member, buy):
    login("CX agent")
    buy(member, "999")

    member_html = client.get(member_page(member)).content.decode()
    dashboard_html = client.get(reverse("admin:index")).content.decode()

    assert '<p id="to-next-tier">1 point to Silver</p>' in member_html
    assert "1 point to Silver</td>" in dashboard_html


def test_the_member_page_shows_balances_progress_and_degradation(
    client, login, member, buy, degradation
):
    login("CX agent")
    buy(member, "2500", when=timezone.now() - timedelta(days=10))
    html = client.get(member_page(member)).content.decode()
    assert '<div class="cx-big" id="lifetime">2,500</div>' in html
    assert '<div class="cx-big" id="available">2,600</div>' in html  # + Silver's bonus
    assert "500 points to Gold" in html
    drop = (timezone.localtime(timezone.now() + timedelta(days=80))).strftime("%-d %b %Y")
    assert f"Without a purchase, drops to Bronze on {drop}" in html


def test_next_degradation_is_when_the_job_would_move_the_member(make_member, buy, degradation):
    ranking = Ranking()
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "9000", when=now - timedelta(days=60))  # Platinum, inactive for 60 days
    member.refresh_from_db()

    when, tier = next_degradation(member, degradation, ranking, now)

    # the run after that day moves the member, not one on that day (rules.md D2)
    after = end_of(drop_day_of(when))
    # 90 days of the programme's calendar after the day of the last purchase
    ninety_days_on = timezone.localdate(member.last_purchase_at) + timedelta(days=90)
    assert tier.code == "gold" and drop_day_of(when) == ninety_days_on
    assert member not in members_to_degrade(degradation, ranking, after - timedelta(seconds=1))
    assert member in members_to_degrade(degradation, ranking, after)


@pytest.mark.parametrize("levels, expected", [(1, "gold"), (2, "silver"), (3, "bronze")])
def test_D2_next_degradation_and_the_job_take_the_same_step(
    make_member, buy, degradation, levels, expected
):
    # given: a Platinum member, degradation by `levels` tiers a period
    degradation.levels_per_step = levels
    degradation.save()
    ranking, now = Ranking(), timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "9000", when=now - timedelta(days=60))
    member.refresh_from_db()

    # when
    when, tier = next_degradation(member, degradation, ranking, now)

    # then: the page's date and tier are the job's, at the run after that day
    after = end_of(drop_day_of(when))
    assert tier.code == expected
    assert members_to_degrade(degradation, ranking, after).get(pk=member.pk).target == tier.pk
    assert member not in members_to_degrade(degradation, ranking, after - timedelta(seconds=1))


def test_the_member_page_with_5000_ledger_entries_runs_a_bounded_number_of_queries(
    client, login, member, django_assert_max_num_queries
):
    from core.bulk import bulk_insert

    login("CX agent")
    now = timezone.now()
    bulk_insert(
        LedgerEntry,
        [
            LedgerEntry(
                member=member,
                kind="adjustment",
                points=1,
                counts_toward_tier=False,
                redeemable=True,
                issued_at=now - timedelta(minutes=i),
                accrue_at=now - timedelta(minutes=i),
                reason=f"Entry {i}",
            )
            for i in range(5000)
        ],
    )
    Member.objects.filter(pk=member.pk).update(points_balance=5000)

    with django_assert_max_num_queries(30):
        page = client.get(member_page(member) + "?ledger=3")

    html = page.content.decode()
    assert "Page 3 of 200 (5,000 entries)" in html
    # newest first, 25 a page, each explained
    assert "Adjusted: Entry 50 (" in html and "Entry 49 (" not in html


# Member list and search


def test_member_search_by_code_email_or_name_prefix(client, login, make_member):
    login("CX agent")
    ana = make_member("M-77001")
    Member.objects.filter(pk=ana.pk).update(
        first_name="Ana", last_name="Vidal", email="ana.vidal@shop.test"
    )
    make_member("M-88002")
    url = reverse("admin:members_member_changelist")
    for query in ["M-77001", "m-770", "ana.vid", "vidal", "ANA", "Ana Vid"]:
        found = client.get(url, {"q": query}).context["cl"].result_list
        assert [m.external_id for m in found] == ["M-77001"], query


@pytest.mark.parametrize(
    "typed",
    [
        "García López",
        "garcía lópez",
        "María García López",
        "María José",
        "María José García",
        "Mar Garc",
    ],
)
def test_a_name_of_several_words_is_found_as_a_whole(client, login, make_member, typed):
    """Found by an audit: most Spanish customers give two surnames, and "García López"
    found nobody, nor did "María José", the admin looking for "López" at the start of
    some field."""
    # given
    login("CX agent")
    maria = make_member("M-77001")
    Member.objects.filter(pk=maria.pk).update(first_name="María José", last_name="García López")
    other = make_member("M-88002")
    Member.objects.filter(pk=other.pk).update(first_name="José", last_name="García Pérez")

    # when
    found = client.get(reverse("admin:members_member_changelist"), {"q": typed})
    picked = client.get(
        "/admin/autocomplete/",
        {"app_label": "points", "model_name": "ledgerentry", "field_name": "member", "term": typed},
    )

    # then: in the list and in the member picker
    assert [m.external_id for m in found.context["cl"].result_list] == ["M-77001"]
    assert [row["text"].split(" ")[0] for row in picked.json()["results"]] == ["M-77001"]


@pytest.mark.parametrize(
    "typed", ["munoz", "MUNOZ", "Muñoz", "jose", "JOSÉ", "José Muñoz", "jose munoz garcia"]
)
def test_a_name_is_found_without_its_accents(client, login, make_member, typed):
    """Found by an audit: agents in Spain type without accents, and "munoz" found no
    Muñoz. A name typed on a Mac (its accent a character apart) is found alike."""
    # given: José as most keyboards type it, and as a Mac does
    login("CX agent")
    jose = make_member("M-77001")
    Member.objects.filter(pk=jose.pk).update(first_name="José", last_name="Muñoz García")
    mac = make_member("M-77002")
    Member.objects.filter(pk=mac.pk).update(first_name="Jose\u0301", last_name="Mun\u0303oz")
    other = make_member("M-88003")
    Member.objects.filter(pk=other.pk).update(first_name="Josefa", last_name="Vidal")

    # when
    found = client.get(reverse("admin:members_member_changelist"), {"q": typed})

    # then
    codes = {m.external_id for m in found.context["cl"].result_list}
    expected = {"M-77001"} if "garcia" in typed else {"M-77001", "M-77002"}
    if typed.lower() in ("jose", "josé"):
        expected = {"M-77001", "M-77002", "M-88003"}  # Josefa starts so too
    assert codes == expected


def test_a_voucher_is_found_by_its_member_s_whole_name(client, login, make_member, staff):
    # given
    from points.services import adjust_points
    from rewards.models import Reward
    from rewards.services import redeem

    login("CX agent")
    maria = make_member("M-77001")
    Member.objects.filter(pk=maria.pk).update(first_name="María", last_name="García López")
    adjust_points(member=maria, points=100, reason="Welcome", by=staff)
    redeem(member=maria, reward=Reward.objects.create(name="Mug", points_cost=100))

    # when
    page = client.get(reverse("admin:rewards_redemption_changelist"), {"q": "García López"})

    # then
    assert [r.member.external_id for r in page.context["cl"].result_list] == ["M-77001"]


def test_long_lists_stop_counting_at_the_cap(client, login, make_member, monkeypatch):
    login("CX agent")
    monkeypatch.setattr(CappedPaginator, "cap", 5)
    for _ in range(7):
        make_member()
    page = client.get(reverse("admin:members_member_changelist"))
    assert "More than 5 members" in page.content.decode()
    page = client.get(reverse("admin:members_member_changelist"), {"q": "M-T"})
    assert "More than 5 results" in page.content.decode()


def test_the_member_and_ledger_lists_run_bounded_queries(
    client, login, make_member, buy, django_assert_max_num_queries
):
    login("CX agent")
    for _ in range(40):
        buy(make_member(), "1500")
    for name in [
        "members_member",
        "points_ledgerentry",
        "points_transaction",
        "members_tierchange",
    ]:
        with django_assert_max_num_queries(12):
            page = client.get(reverse(f"admin:{name}_changelist"))
        assert page.status_code == 200
        assert b'value="delete_selected"' not in page.content


# System definitions and the bounds of assign points


def test_a_marketer_cannot_change_the_handle_or_kind_of_a_system_definition(
    client, login, member, buy
):
    # given
    from points.models import PointDefinition

    login("Marketer")
    bonus = PointDefinition.objects.get(handle="tier-up-bonus")
    url = reverse("admin:points_pointdefinition_change", args=[bonus.pk])

    # when: the form is posted with a new handle and kind
    response = client.post(
        url,
        {
            "name": "Welcome bonus",
            "handle": "renamed",
            "kind": "action",
            "earn_rate": "1",
            "points": "0",
            "accrue_delay_days": "0",
            "redeemable": "on",
            "is_active": "on",
        },
    )

    # then: the name changed, the handle and kind did not, and tier-ups still pay
    assert response.status_code == 302
    bonus.refresh_from_db()
    assert (bonus.name, bonus.handle, bonus.kind) == ("Welcome bonus", "tier-up-bonus", "bonus")
    buy(member, "1000")
    assert summary(member)["available"] == 1000 + 100
    delete = client.post(
        reverse("admin:points_pointdefinition_delete", args=[bonus.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403


def test_a_missing_system_definition_is_a_clear_error_not_a_crash(member, buy, staff):
    # given: the definition was renamed behind the admin's back
    from django.core.exceptions import ValidationError

    from points.models import PointDefinition

    PointDefinition.objects.filter(handle="manual-adjustment").update(handle="other")

    # when / then
    with pytest.raises(ValidationError, match="'manual-adjustment' is missing"):
        adjust_points(member=member, points=10, reason="Goodwill", by=staff)


@pytest.mark.parametrize(
    "points, message",
    [
        (9_000_000_000_000_000_000, "At most 100,000 points"),
        (10**19, "At most 100,000 points"),
        (-(10**19), "At most 100,000 points"),
        (100_001, "At most 100,000 points"),
        ("1e400", "Enter a whole number"),
    ],
)
def test_assign_points_refuses_absurd_amounts_with_a_message(
    client, login, member, points, message
):
    # given
    login("CX agent")

    # when
    response = assign(client, member, points)

    # then
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_adjustments_up_to_the_setting_are_accepted(member, staff, settings):
    # given
    settings.MAX_ADJUSTMENT_POINTS = 5

    # when
    adjust_points(member=member, points=5, reason="Goodwill", by=staff)

    # then
    assert summary(member)["available"] == 5


def test_an_adjustment_reason_longer_than_the_ledger_keeps_is_refused(member, staff):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Keep the reason to 255 characters"):
        adjust_points(member=member, points=10, reason="x" * 300, by=staff)
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_cancelling_on_a_merged_accounts_page_names_the_account_refunded(
    client, login, make_member, staff, rewards
):
    # given: a redemption of M-OLD, merged since into M-KEEP
    from members.services import merge_members
    from rewards.services import redeem

    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=600, reason="Welcome", by=staff)
    redemption = redeem(member=old, reward=rewards["5 euro voucher"], by=staff)
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Same customer")
    login("CX agent")
    # when: an agent opens its cancellation from M-OLD's page
    page = client.get(
        reverse("admin:members_member_cancel_redemption", args=[old.pk, redemption.pk])
    ).content.decode()
    # then: the refund goes to M-KEEP, and the page says so (M5)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "500 points come back to M-KEEP" in text
