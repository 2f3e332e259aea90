"""The member page explains what it shows and asks before it acts (issue: the CX
Manager tells the truth): ledger lines a customer can follow, what expires when, the
tier's multiplier and benefits, overdue degradation, redemptions confirmed and
cancelled with a reason, a member picker that tells namesakes apart, and the
Operations role."""

import calendar
import uuid
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.models import ExpiryPolicy, LedgerEntry, PointDefinition
from points.services import adjust_points
from rewards.models import Redemption
from rewards.services import redeem
from tests.conftest import at, give_return, ledger_state, summary
from tiers.models import Tier
from tiers.services import grant_status, recalculate_all_tiers

pytestmark = pytest.mark.django_db


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def page_of(client, member) -> str:
    return client.get(member_page(member)).content.decode()


# Ledger lines


def test_each_ledger_line_names_its_transaction_amount_store_and_the_balance_after(
    client, login, member, buy
):
    # given: a purchase at a store, then part of it returned
    login("CX agent")
    purchase = buy(member, "100.00", when=at("2026-03-01"), store="STORE-12", external_id="D-017")
    give_return(member, purchase, "25.00", when=at("2026-03-05"), external_id="R-017")

    # when
    html = page_of(client, member)

    # then: the purchase line shows its id, amount and store; the return names it
    assert "D-017 · 100.00 · STORE-12" in html
    assert "R-017 · 25.00" in html and "returns D-017" in html
    # and the balance after each line: 100 earned, then 25 taken back
    balances = [
        entry.balance_after for entry in client.get(member_page(member)).context["ledger_page"]
    ]
    assert balances == [75, 100]


@pytest.mark.parametrize(
    "query",
    [{}, {"ledger": "2"}, {"ledger": "3"}, {"ledger": "4"}, {"as_of": "2026-03-20"}],
    ids=["first page", "second", "third", "last", "as of a day"],
)
def test_every_ledger_page_gives_each_line_the_balance_after_it(
    client, login, member, buy, staff, query
):
    """Each line's balance is the running sum of redeemable points in the order entries
    were issued (then by id), whichever page and from whichever end of the ledger the
    page reads it (with_balance_after)."""
    # given: 80 entries over March, some back-dated (recorded after later ones), some
    # tier-only (they count for no balance), two at the same moment
    for day in range(1, 31):
        buy(member, f"{day}.00", when=at(f"2026-03-{day:02d}"))
    for day in range(1, 31, 3):
        adjust_points(member=member, points=day, reason="Goodwill", by=staff, now=at("2026-03-15"))
    definition = PointDefinition.objects.create(
        name="Tier only", handle="tier-only", kind="bonus", redeemable=False
    )
    for _ in range(40):
        adjust_points(member=member, points=7, reason="Tier", by=staff, definition=definition)
    login("CX agent")

    # when
    page = client.get(member_page(member), query).context["ledger_page"]

    # then
    running, after = 0, {}
    for entry in LedgerEntry.objects.filter(member=member).order_by("issued_at", "pk"):
        running += entry.points if entry.redeemable else 0
        after[entry.pk] = running
    assert len(page) > 0
    assert [e.balance_after for e in page] == [after[e.pk] for e in page]


@pytest.mark.parametrize("points,told", [(2_096, "2,096 points expire"), (1, "1 point expires")])
def test_the_member_page_says_how_many_points_expire_at_the_next_cutoff(
    client, login, member, staff, points, told
):
    # given: quarterly expiry from today, a Bronze member with those points available
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "quarterly", timezone.localdate()
    policy.save()
    adjust_points(member=member, points=points, reason="Welcome back", by=staff)
    login("CX agent")
    today = timezone.localdate()
    month = (today.month - 1) // 3 * 3 + 3  # the quarter's last month
    cutoff = date(today.year, month, calendar.monthrange(today.year, month)[1])

    # when
    html = page_of(client, member)

    # then
    assert f"{told} on {cutoff:%-d %b %Y}" in html


def test_the_member_page_says_a_tier_whose_points_never_expire(client, login, member, staff):
    # given: quarterly expiry from today (no passed cutoff waits for its run, whose tier
    # would be read); the member reaches Gold, whose points never expire
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "quarterly", timezone.localdate()
    policy.save()
    counting = PointDefinition.objects.create(
        name="Status points", handle="status", kind="bonus", counts_toward_tier=True
    )
    adjust_points(member=member, points=3_500, reason="Match", by=staff, definition=counting)
    login("CX agent")

    # when
    html = page_of(client, member)

    # then
    assert "Gold points never expire." in html and "expire on" not in html


def test_the_member_page_shows_the_tiers_multiplier_and_benefits(client, login, member, staff):
    # given: a Gold member
    counting = PointDefinition.objects.create(
        name="Status points", handle="status", kind="bonus", counts_toward_tier=True
    )
    adjust_points(member=member, points=3_000, reason="Match", by=staff, definition=counting)
    login("CX agent")
    gold = Member.objects.get(pk=member.pk).effective_tier

    # when
    html = page_of(client, member)

    # then
    assert "earns x2" in html
    assert gold.benefit_list and all(benefit in html for benefit in gold.benefit_list)


def test_D2_an_overdue_degradation_reads_at_tonights_run_not_a_past_date(
    client, login, make_member, buy, degradation
):
    # given: a Silver member whose 90 days without a purchase ended yesterday
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "1500", when=now - timedelta(days=91))
    login("CX agent")

    # when
    html = page_of(client, member)

    # then
    assert "Without a purchase, drops to Bronze at tonight&#x27;s run" in html
    past = (timezone.localtime(now - timedelta(days=1))).strftime("%-d %b %Y")
    assert f"drops to Bronze on {past}" not in html


# Tier history


def test_tier_history_shows_the_last_recorded_change_first_and_marks_back_dated_ones(
    client, login, make_member, buy
):
    # given: a purchase makes the member Silver; then an import of an older purchase,
    # dated before it, makes them Gold
    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1500", when=at("2026-06-01"))
    buy(member, "2000", when=at("2026-05-01"))

    # when
    history = client.get(member_page(member)).context["tier_history"]

    # then: the top row is the member's tier now, marked as dated before the row below
    assert [change.to_tier.code for change in history] == ["gold", "silver", "bronze"]
    assert history[0].back_dated and not history[1].back_dated
    assert Member.objects.get(pk=member.pk).effective_tier.code == "gold"
    assert "back-dated" in page_of(client, member)


# Manual adjustments with an action definition (P6)


@pytest.fixture
def referral(tiers):
    return PointDefinition.objects.create(
        name="Refer a friend", handle="refer", kind="action", points=200
    )


def test_P6_an_action_definition_gives_exactly_its_points(member, staff, referral):
    # given
    before = ledger_state()

    # when / then: another amount is refused, naming the action's points
    with pytest.raises(Exception) as refused:
        adjust_points(member=member, points=5_000, reason="Referral", by=staff, definition=referral)
    assert "Refer a friend is worth 200 points" in str(refused.value)
    assert ledger_state() == before

    # and its points, or minus them, are accepted
    adjust_points(
        member=member, points=200, reason="Referral of M-2", by=staff, definition=referral
    )
    adjust_points(member=member, points=-200, reason="Wrong friend", by=staff, definition=referral)
    assert summary(member)["available"] == 0


def test_the_assign_form_names_an_actions_points_and_refuses_another_amount(
    client, login, member, referral
):
    # given
    login("CX agent")
    form = client.get(member_page(member)).context["assign_form"]
    assert "Refer a friend (200 points)" in str(form["definition"])

    # when
    page = client.post(
        reverse("admin:members_member_assign_points", args=[member.pk]),
        {"points": 5000, "reason": "Referral", "definition": referral.pk, "token": uuid.uuid4()},
    )

    # then
    assert "Refer a friend is worth 200 points" in page.content.decode()
    assert not LedgerEntry.objects.filter(member=member).exists()


# Rewards and redemptions


def test_the_rewards_panel_shows_stock(client, login, member, catalogue):
    # given
    login("CX agent")
    limited = catalogue["5 euro voucher"]
    limited.stock = 12
    limited.save()

    # when
    html = page_of(client, member)

    # then
    assert "12 in stock" in html and "unlimited" in html


@pytest.fixture
def coffee_redemption(member, staff, catalogue):
    adjust_points(member=member, points=1_000, reason="Test", by=staff)
    return redeem(member=member, reward=catalogue["Coffee voucher"], by=staff)


def test_cancelling_a_redemption_from_the_member_page_asks_why_then_refunds_once(
    client, login, member, coffee_redemption
):
    # given
    agent = login("CX agent")
    assert "Cancel…" in page_of(client, member)
    url = reverse("admin:members_member_cancel_redemption", args=[member.pk, coffee_redemption.pk])
    before = summary(member)["available"]

    # when: the link asks; an empty reason is refused
    asked = client.get(url)
    no_reason = client.post(url, {"token": asked.context["form"]["token"].initial, "reason": ""})

    # then
    assert "Cancel this redemption?" in asked.content.decode()
    assert "Say why the redemption is cancelled." in no_reason.content.decode()
    assert Redemption.objects.get(pk=coffee_redemption.pk).status == "redeemed"

    # when: sent with a reason, twice
    token = asked.context["form"]["token"].initial
    for _ in range(2):
        done = client.post(url, {"token": token, "reason": "Voucher never arrived"})

    # then: refunded once, with the reason and the agent
    assert done.status_code == 302
    cancelled = Redemption.objects.get(pk=coffee_redemption.pk)
    assert cancelled.status == "cancelled" and cancelled.cancelled_by == agent
    assert cancelled.refund.reason.endswith(": Voucher never arrived")
    assert summary(member)["available"] == before + coffee_redemption.points


def test_a_marketer_cannot_cancel_a_redemption_from_the_member_page(
    client, login, member, coffee_redemption
):
    login("Marketer")
    url = reverse("admin:members_member_cancel_redemption", args=[member.pk, coffee_redemption.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"token": uuid.uuid4(), "reason": "x"}).status_code == 403
    assert "Cancel…" not in page_of(client, member)
    assert Redemption.objects.get(pk=coffee_redemption.pk).status == "redeemed"


def test_a_redemption_of_another_member_cannot_be_cancelled_through_this_one(
    client, login, make_member, coffee_redemption
):
    login("CX agent")
    other = make_member()
    url = reverse("admin:members_member_cancel_redemption", args=[other.pk, coffee_redemption.pk])
    assert client.post(url, {"token": uuid.uuid4(), "reason": "x"}).status_code == 404
    assert Redemption.objects.get(pk=coffee_redemption.pk).status == "redeemed"


def test_the_redemption_list_finds_a_member_by_the_start_of_their_code_or_email(
    client, login, member, coffee_redemption
):
    login("CX agent")
    url = reverse("admin:rewards_redemption_changelist")
    for term in (member.external_id[:4], member.email[:6].upper()):
        page = client.get(url, {"q": term})
        assert list(page.context["cl"].result_list) == [coffee_redemption], term


# Finding members


def test_the_member_picker_tells_namesakes_apart_by_email_and_tier(client, login, make_member):
    # given: two members with the same name
    login("CX agent")
    for code in ("M-SARA1", "M-SARA2"):
        Member.objects.filter(pk=make_member(code=code).pk).update(
            first_name="Sara", last_name="Alvarez"
        )

    # when
    found = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "points", "model_name": "ledgerentry", "field_name": "member", "term": "M-S"},
    ).json()["results"]

    # then
    assert sorted(result["text"] for result in found) == [
        "M-SARA1 Sara Alvarez · m-sara1@example.com · Bronze",
        "M-SARA2 Sara Alvarez · m-sara2@example.com · Bronze",
    ]


def test_members_are_found_by_the_start_of_their_phone_number(client, login, make_member):
    login("CX agent")
    member = make_member()
    Member.objects.filter(pk=member.pk).update(phone="+34612345678")
    make_member()
    page = client.get(reverse("admin:members_member_changelist"), {"q": "+34612"})
    assert [m.pk for m in page.context["cl"].result_list] == [member.pk]


@pytest.mark.parametrize("typed", ["+34 600 000 001", "+34 600", " +34 600 000 001 "])
def test_a_phone_stored_with_spaces_is_found_by_its_whole_or_its_start_as_stored(
    client, login, make_member, typed
):
    # given a phone stored as the members file gave it, with spaces
    login("CX agent")
    member = make_member()
    Member.objects.filter(pk=member.pk).update(phone="+34 600 000 001")
    other = make_member()
    Member.objects.filter(pk=other.pk).update(phone="+34 611 000 001")

    # when an agent types it as it is stored
    page = client.get(reverse("admin:members_member_changelist"), {"q": typed})

    # then
    assert [m.pk for m in page.context["cl"].result_list] == [member.pk]


# Operations


def test_an_operator_imports_transactions_and_cannot_give_points_or_redeem(
    client, login, member, catalogue
):
    # given
    login("Operations")

    # then: the import and the lists an operator checks open
    assert client.get(reverse("admin:points_transaction_import")).status_code == 200
    for page in ("points_transaction_changelist", "points_ledgerentry_changelist"):
        assert client.get(reverse(f"admin:{page}")).status_code == 200
    assert client.get(member_page(member)).status_code == 200

    # and giving points or redeeming is refused
    assign = reverse("admin:members_member_assign_points", args=[member.pk])
    assert client.post(assign, {"points": 100, "reason": "x"}).status_code == 403
    redeem_url = reverse("admin:members_member_redeem", args=[member.pk])
    reward = catalogue["Coffee voucher"].pk
    assert client.post(redeem_url, {"reward": reward, "token": uuid.uuid4()}).status_code == 403
    assert summary(member)["available"] == 0


def test_the_tier_panel_promises_no_restore_once_the_member_qualifies_for_no_more(
    client, login, make_member, buy, degradation
):
    # given: a Gold member (3,500 points) degraded to Silver
    from tiers.models import Tier
    from tiers.services import degrade_inactive_members, recalculate_all_tiers

    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "3500", when=now - timedelta(days=100))
    degrade_inactive_members(now=now)
    # when: Gold is raised to 5,000: the member qualifies for Silver, no more
    Tier.objects.filter(code="gold").update(threshold=5000)
    recalculate_all_tiers()
    login("CX agent")
    # then: a level below Silver, as 100 days without a purchase say (D2); the panel
    # promises Silver back for a purchase, not Gold
    page = page_of(client, member)
    why = page[page.index('id="tier-why"') :].split("</p>")[0]
    assert "qualifying for Silver; kept at Bronze by the days without a purchase" in why, why
    assert "Gold" not in why, why


def test_T3_D2_a_member_new_thresholds_qualify_but_inactivity_keeps_lower_is_told_so(
    client, login, make_member, buy, degradation
):
    # given: 999 lifetime points (1 short of Silver), no purchase for 100 days
    member = make_member(joined_at=timezone.now() - timedelta(days=300))
    buy(member, "999", when=timezone.now() - timedelta(days=100))

    # when: Silver's threshold is lowered to 900 (T3): qualified for Silver, kept at
    # Bronze by 90 days without a purchase (D2)
    Tier.objects.filter(code="silver").update(threshold=900)
    recalculate_all_tiers()

    # then: the history says why she is still Bronze, not just "the thresholds changed"
    login("CX agent")
    history = client.get(member_page(member)).context["tier_history"]
    assert history[0].explanation.endswith(
        "the tier thresholds changed, qualifying for Silver; kept at Bronze by the days "
        "without a purchase, a purchase restores it"
    )


def test_points_at_stake_of_a_tier_that_never_expires_say_why_they_expire(
    client, login, member, staff
):
    # given: Silver by points, Gold by a status match ending before the next cutoff
    today = timezone.localdate()
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "annual", today + timedelta(days=10)
    policy.save()
    counting = PointDefinition.objects.create(
        name="Status points", handle="status", kind="bonus", counts_toward_tier=True
    )
    adjust_points(member=member, points=1_200, reason="Match", by=staff, definition=counting)
    until = today + timedelta(days=5)
    grant_status(
        member=member, tier=Tier.objects.get(code="gold"), until=until, reason="Card", by=staff
    )
    login("CX agent")

    # when
    html = page_of(client, member)

    # then: the Silver points expire, and the page says why beside "Gold"
    assert (
        f"unless spent before: Gold points never expire, but the status match ends on "
        f"{until:%-d %b %Y}."
    ) in html


def test_a_matched_member_who_qualifies_by_points_is_told_the_tier_is_their_own(
    client, login, member, staff
):
    # given: Silver by points, Gold by a status match; then Gold by points too
    counting = PointDefinition.objects.create(
        name="Status points", handle="status", kind="bonus", counts_toward_tier=True
    )
    adjust_points(member=member, points=1_200, reason="Match", by=staff, definition=counting)
    grant_status(
        member=member,
        tier=Tier.objects.get(code="gold"),
        until=timezone.localdate() + timedelta(days=60),
        reason="Card",
        by=staff,
    )
    adjust_points(member=member, points=1_800, reason="Points", by=staff, definition=counting)
    login("CX agent")

    # when
    html = page_of(client, member)

    # then: the tier is explained by the points that reached it, not by the match
    why = html.split('id="tier-why">')[1].split("</p>")[0]
    assert "reached 3,000 lifetime points" in why and "status match" not in why
    assert "the member now qualifies for it by points: its end changes nothing" in html
