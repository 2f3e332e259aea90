"""Member 360 in the CX Manager (DESIGN.md): the member page explains the tier and each
ledger entry, shows the member as of a past date, and merges a duplicate account
after a confirmation page."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from members.models import Member
from members.services import merge_members
from points.models import Campaign, ExpiryPolicy, LedgerEntry, PointDefinition
from points.services import adjust_points, expire_points
from tests.conftest import at, give_return, ledger_state, summary
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


def member_page(member, **params):
    url = reverse("admin:members_member_change", args=[member.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def merge_url(member):
    return reverse("admin:members_member_merge", args=[member.pk])


def page_of(client, member, **params) -> str:
    response = client.get(member_page(member, **params))
    assert response.status_code == 200
    return response.content.decode()


# The tier, explained


def test_the_tier_is_explained_by_the_change_that_brought_it(client, login, make_member, buy):
    # given: Silver in March, Gold on 23 July
    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1200", when=at("2026-03-01"))
    buy(member, "1800", when=at("2026-07-23"))

    # when
    html = page_of(client, member)

    # then
    assert "Gold since 23 Jul 2026: reached 3,000 lifetime points" in html
    assert "Silver since 1 Mar 2026: reached 1,000 lifetime points" in html  # the history


def test_a_degraded_tier_says_how_long_without_a_purchase(
    client, login, make_member, buy, degradation
):
    # given: Silver on 1 March, no purchase since; the nightly job on 1 June
    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1500", when=at("2026-03-01"))
    degrade_inactive_members(now=at("2026-06-01", hour=3))

    # when
    html = page_of(client, member)

    # then
    assert (
        "Bronze from 1 Jun 2026: 91 days without a purchase (last purchase 1 Mar 2026); "
        "qualified for Silver, a purchase restores it"
    ) in html


def test_a_degradation_after_a_merge_counts_from_the_merged_accounts_purchase(
    client, login, make_member, buy, degradation, staff
):
    # given: the old account bought on 1 March; merged into a new one that never bought
    login("CX agent")
    keep = make_member("M-KEEP", joined_at=at("2026-01-01"))
    old = make_member("M-OLD", joined_at=at("2025-06-01"))
    buy(old, "1500", when=at("2026-03-01"))
    merge_members(
        survivor=keep, duplicate=old, by=staff, reason="Card re-issued", now=at("2026-03-10")
    )
    degrade_inactive_members(now=at("2026-06-01", hour=3))

    # when / then
    assert "91 days without a purchase (last purchase 1 Mar 2026)" in page_of(client, keep)


def test_a_return_that_lowers_the_tier_says_so(client, login, member, buy):
    login("CX agent")
    purchase = buy(member, "1200", when=at("2026-03-01"))
    give_return(member, purchase, "500", when=at("2026-03-05"))

    html = page_of(client, member)

    assert "Bronze since 5 Mar 2026: a return: lifetime points fell below 1,000" in html


# Each ledger entry, explained


def test_each_entry_names_the_rule_that_made_it(client, login, make_member, buy, staff):
    # given: a Gold member buys during a double points campaign, returns part, is
    # adjusted by an agent, and an account is merged in
    agent = login("CX agent")
    member = make_member("M-360")
    status = PointDefinition.objects.create(
        name="Status match", handle="status", kind="bonus", counts_toward_tier=True
    )
    adjust_points(member=member, points=3_000, reason="Status match", by=staff, definition=status)
    Campaign.objects.create(
        name="Spring double",
        multiplier=Decimal(2),
        starts_at=at("2026-03-01", hour=0),
        ends_at=at("2026-03-31", hour=0),
    )
    purchase = buy(member, "100.00", when=at("2026-03-02"), store="STORE-12", external_id="D-17")
    give_return(member, purchase, "25.00", when=at("2026-03-05"), external_id="R-17")
    adjust_points(member=member, points=50, reason="Late delivery", by=agent)
    old = make_member("M-OLD")
    adjust_points(member=old, points=80, reason="Welcome", by=staff)
    merge_members(survivor=member, duplicate=old, by=agent, reason="New e-mail address")

    # when
    html = page_of(client, member)

    # then
    assert "Purchase D-17 of 100.00 at STORE-12, earned at Gold x2, Spring double x2" in html
    assert (
        "Return R-17 of 25.00 of purchase D-17 (100.00 on 2 Mar 2026): takes back its points"
    ) in html
    assert f"Adjusted by {agent}: Late delivery (Manual adjustment; does not count" in html
    assert "Welcome to Gold: the bonus for reaching the tier for the first time" in html
    assert f"Merged from M-OLD: New e-mail address (accounts merged by {agent})" in html


def test_an_expiry_entry_names_its_cutoff(client, login, member, staff):
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 3, 1)
    policy.save()
    adjust_points(member=member, points=300, reason="Welcome", by=staff, now=at("2026-03-05"))
    expire_points(now=at("2026-04-01"))
    login("CX agent")

    html = page_of(client, member, as_of="2026-04-01")

    assert "Block expiry at the end of 31 Mar 2026: the points available then expired" in html


# As of a date


def test_as_of_a_date_shows_the_figures_and_tier_then_and_the_ledger_up_to_then(
    client, login, make_member, buy
):
    # given: Silver on 1 March, Gold on 23 July
    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1200", when=at("2026-03-01"))
    buy(member, "1800", when=at("2026-07-23"))

    # when: the customer says they were Silver in May
    response = client.get(member_page(member, as_of="2026-05-15"))

    # then: 1,300 points then (1,200 and the Silver bonus), Silver, and why
    as_of = response.context["as_of"]
    assert as_of["figures"]["available"] == 1300 and as_of["figures"]["lifetime"] == 1200
    html = response.content.decode()
    assert "Silver since 1 Mar 2026: reached 1,000 lifetime points; 1,800 points to Gold" in html
    assert "Ledger up to 15 May 2026" in html
    assert [e.points for e in response.context["ledger_page"]] == [100, 1200]


def test_a_threshold_raised_since_is_not_said_to_have_been_reached_then(
    client, login, make_member, buy
):
    """Found by an audit: Silver raised from 1,000 to 1,800 after a member reached it
    with 1,002; her page said "reached 1,800 lifetime points" on the day she had 1,002,
    and as of then "Bronze: no change recorded yet" above a history showing Silver."""
    # given: Silver on 28 May with 1,002 points; 1,980 today; Silver now at 1,800
    from tiers.models import Tier
    from tiers.services import recalculate_all_tiers

    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1002", when=at("2026-05-28"))
    buy(member, "652", when=at("2026-06-10"))  # x1.5 at Silver: 978
    Tier.objects.filter(code="silver").update(threshold=1800)
    recalculate_all_tiers()

    # when: her page today, and as of 1 June
    today = page_of(client, member)
    then = page_of(client, member, as_of="2026-06-01")

    # then: what she had when she reached Silver, and the history of then, told apart
    said = (
        "Silver since 28 May 2026: reached Silver with 1,002 lifetime points, "
        "as the thresholds were"
    )
    assert said in today and "reached 1,800 lifetime points" not in today
    assert (
        "Bronze by today&#x27;s thresholds; the tier history shows Silver then, under the "
        "thresholds of the time"
    ) in then
    assert "no change recorded yet" not in then


@pytest.mark.parametrize("text", ["yesterday", "2026-02-30", "2999-01-01", "%00", "9" * 300])
def test_an_as_of_that_is_no_past_date_is_said_on_the_page(client, login, member, text):
    login("CX agent")

    html = page_of(client, member, as_of=text)

    assert "Give a date" in html


def test_the_member_page_with_history_and_as_of_runs_a_bounded_number_of_queries(
    client, login, make_member, buy, degradation, django_assert_max_num_queries
):
    # given: a member with many purchases, returns and tier changes
    login("CX agent")
    member = make_member(joined_at=at("2026-01-01"))
    for i in range(40):
        purchase = buy(member, "400", when=at("2026-01-02") + timedelta(days=i))
        if i % 3 == 0:
            give_return(member, purchase, "400", when=at("2026-01-02") + timedelta(days=i))
    degrade_inactive_members(now=at("2026-06-01"))
    client.get(member_page(member))  # the programme cached, as in production

    # when / then
    with django_assert_max_num_queries(30):
        client.get(member_page(member, as_of="2026-02-01"))
    with django_assert_max_num_queries(30):
        client.get(member_page(member))


# Merging from the member page


def merge_form(code, reason="New e-mail address", token=None, confirm=False):
    data = {"merge-duplicate": code, "merge-reason": reason, "merge-token": token or uuid.uuid4()}
    if confirm:
        data["_confirm"] = "1"
    return data


@pytest.mark.parametrize("reason", ["\u200b", "\ufeff", "  "])
def test_a_merge_without_a_reason_a_reader_can_see_is_refused_on_the_field_before_confirming(
    client, login, make_member, reason
):
    # given
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")

    # when: the reason is invisible characters alone (P6)
    page = client.post(merge_url(keep), merge_form("M-OLD", reason=reason))

    # then: the member page says so on the field, keeping the code typed; no confirmation
    html = page.content.decode()
    assert 'id="merge-confirmation"' not in html
    assert page.context["merge_form"].errors["reason"] == ["Say why the accounts are merged."]
    assert 'value="M-OLD"' in html and not Member.objects.get(pk=old.pk).is_merged


def test_an_agent_sees_both_accounts_and_the_result_before_anything_is_written(
    client, login, make_member, buy
):
    # given: two Silver accounts of one customer
    agent = login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    buy(keep, "1800")
    buy(old, "1500")
    before = ledger_state()

    # when: the agent asks to merge M-OLD into M-KEEP
    page = client.post(merge_url(keep), merge_form("M-OLD"))

    # then: the confirmation page, nothing written
    html = page.content.decode()
    assert page.status_code == 200 and 'id="merge-confirmation"' in html
    assert "M-OLD" in html and "M-KEEP" in html
    after = page.context["preview"]["after"]
    assert (after["available"], after["lifetime"], after["effective_tier"].code) == (
        3750,
        3300,
        "gold",
    )
    assert "tier-up bonus of 250 points" in html
    assert ledger_state() == before and not Member.objects.get(pk=old.pk).is_merged

    # when: confirmed
    token = page.context["form"].cleaned_data["token"]
    done = client.post(merge_url(keep), merge_form("M-OLD", token=token, confirm=True))

    # then: merged, back on the member page, the figures of the confirmation page
    assert done.status_code == 302 and done.url == member_page(keep)
    assert summary(keep)["available"] == 3750 and Member.objects.get(pk=old.pk).is_merged
    messages = [str(m) for m in client.get(done.url).context["messages"]]
    assert any("Merged M-OLD into M-KEEP: New e-mail address" in m for m in messages)
    assert LogEntry.objects.filter(user=agent, object_id=str(old.pk)).exists()


def test_a_duplicate_code_typed_in_lower_case_finds_its_account(client, login, make_member):
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")

    page = client.post(merge_url(keep), merge_form("m-old"))

    assert 'id="merge-confirmation"' in page.content.decode()
    assert page.context["duplicate"] == old


def test_the_same_confirmation_sent_twice_merges_once(client, login, make_member, staff):
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=400, reason="Welcome", by=staff)
    form = merge_form("M-OLD", confirm=True)

    client.post(merge_url(keep), form)
    second = client.post(merge_url(keep), form, follow=True)

    assert "already sent: nothing was applied twice" in second.content.decode()
    assert summary(keep)["available"] == 400
    assert LedgerEntry.objects.filter(kind="merge").count() == 2


@pytest.mark.parametrize(
    "code, message",
    [
        ("M-NOBODY", "No member has the customer code &#x27;M-NOBODY&#x27;"),
        ("M-KEEP", "cannot be merged into itself"),
        ("", "Give the customer code of the duplicate account"),
    ],
)
def test_a_merge_that_cannot_be_made_is_said_on_the_member_page(
    client, login, make_member, code, message
):
    login("CX agent")
    keep = make_member("M-KEEP")

    page = client.post(merge_url(keep), merge_form(code))

    assert page.status_code == 200 and message in page.content.decode()
    assert not LedgerEntry.objects.filter(kind="merge").exists()


def test_a_refused_confirmation_says_why_and_writes_nothing(client, login, make_member, staff):
    # given: the confirmation page was shown, then someone merged M-OLD elsewhere
    login("CX agent")
    keep, old, other = make_member("M-KEEP"), make_member("M-OLD"), make_member("M-OTHER")
    merge_members(survivor=other, duplicate=old, by=staff, reason="Duplicate")
    before = ledger_state()

    # when
    page = client.post(merge_url(keep), merge_form("M-OLD", confirm=True), follow=True)

    # then
    assert "M-OLD was already merged into M-OTHER" in page.content.decode()
    assert ledger_state() == before


@pytest.mark.parametrize("role", ["Marketer", "Operations", None])
def test_only_a_role_with_the_merge_permission_merges(client, login, make_member, role):
    login(role)
    keep, old = make_member("M-KEEP"), make_member("M-OLD")

    response = client.post(merge_url(keep), merge_form("M-OLD", confirm=True))

    assert response.status_code == 403
    assert not Member.objects.get(pk=old.pk).is_merged


def test_the_merge_form_is_on_the_page_of_an_agent_not_of_a_marketer(client, login, member):
    login("Marketer")
    assert 'id="merge"' not in page_of(client, member)
    login("CX agent")
    assert 'id="merge"' in page_of(client, member)


def test_a_get_of_the_merge_address_changes_nothing(client, login, member):
    login("CX agent")
    page = client.get(merge_url(member))
    # the member page, where the merge form is (tests/loyalty_site/test_audit_roles.py)
    assert page.status_code == 302
    assert page.url == reverse("admin:members_member_change", args=[member.pk])
    assert not Member.objects.filter(merged_into__isnull=False).exists()


def test_a_closed_account_says_where_its_points_went_and_offers_no_forms(
    client, login, make_member, staff
):
    # given
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Card re-issued")

    # when
    html = page_of(client, old)

    # then
    assert "Closed: merged into" in html and "M-KEEP" in html
    for form in ('id="assign-points"', 'id="merge"', 'value="Redeem reward"'):
        assert form not in html
    assert "Accounts merged into this one:" in page_of(client, keep)


def test_searching_a_merged_code_finds_the_member_it_was_merged_into(
    client, login, make_member, staff
):
    # given
    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Card re-issued")

    # when
    found = client.get(reverse("admin:members_member_changelist"), {"q": "m-old"})
    picked = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "points",
            "model_name": "ledgerentry",
            "field_name": "member",
            "term": "M-OLD",
        },
    )

    # then: the closed account, and the account it was merged into
    codes = {m.external_id for m in found.context["cl"].result_list}
    assert codes == {"M-OLD", "M-KEEP"}
    assert "Merged (closed)" in found.content.decode()
    assert {r["text"].split(" ")[0] for r in picked.json()["results"]} == {"M-OLD", "M-KEEP"}
    tier_of = {
        r["text"].split(" ")[0]: r["text"].split(" · ")[-1] for r in picked.json()["results"]
    }
    assert tier_of["M-OLD"] == "Merged (closed)"  # as the list says, not its tier of before


def test_the_merge_confirmation_counts_only_the_vouchers_a_cancellation_could_refund(
    client, login, make_member, staff
):
    """What the agent meets: the duplicate redeemed two coffees; one was used at the
    till yesterday. The confirmation says "M-OLD's 2 open redemptions stay where they
    are; a cancelled one refunds M-KEEP", but a used voucher can never be cancelled:
    only one can still refund anyone."""
    # given
    from rewards.models import Reward
    from rewards.services import redeem, use_voucher

    login("CX agent")
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    adjust_points(member=old, points=400, reason="Welcome", by=staff)
    coffee = Reward.objects.create(name="Coffee", points_cost=100)
    used, _ = redeem(member=old, reward=coffee), redeem(member=old, reward=coffee)
    use_voucher(code=used.code, external_id="TILL-1")

    # when
    page = client.post(merge_url(keep), merge_form("M-OLD"))

    # then
    assert "M-OLD's 1 open redemption stays where it is; a cancelled one refunds M-KEEP." in (
        page.content.decode()
    )


def test_the_merge_confirmation_says_the_account_kept_takes_over_a_referral(
    client, login, make_member
):
    # given: M-OLD was referred by M-FAN; neither M-OLD nor M-KEEP has bought
    from members.services import enroll_member

    make_member("M-FAN")
    enroll_member(external_id="M-OLD", email="old@example.com", referred_by="M-FAN")
    keep = make_member("M-KEEP")
    login("CX agent")

    # when
    page = client.post(merge_url(keep), merge_form("M-OLD")).content.decode()

    # then
    assert (
        "M-OLD was referred by M-FAN and neither account has bought yet: M-KEEP's first "
        "purchase pays M-FAN the referral."
    ) in page
