"""Earning beyond the purchase in the CX Manager and the API: the campaign form's new
audiences with the members a campaign reaches now; enrolment with a birth date and a
referrer; the member page saying who referred whom."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from members.services import enroll_member
from points.models import Campaign
from tests.conftest import definition
from tests.points.test_campaign_admin import posted
from tiers.models import MULTIPLIER_ABOVE_ZERO

pytestmark = pytest.mark.django_db


def enrol(code, **fields):
    return enroll_member(external_id=code, email=f"{code.lower()}@example.com", **fields)


def test_campaign_form_saves_stores_minimum_amount_and_birthday_month(client, login, no_campaigns):
    login("Marketer")
    saved = client.post(
        reverse("admin:points_campaign_add"),
        posted(
            "Birthday flagship",
            stores="STORE-01, STORE-02,,STORE-01",
            min_amount="50.00",
            birthday_month_only="on",
        ),
    )
    assert saved.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.stores == ["STORE-01", "STORE-02"]
    assert (campaign.min_amount, campaign.birthday_month_only) == (Decimal(50), True)
    listed = client.get(reverse("admin:points_campaign_changelist")).content.decode()
    assert "in STORE-01, STORE-02; from 50.00; in the member&#x27;s birthday month" in listed


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("min_amount", "0", "The minimum amount must be above 0 (leave it empty for any amount)."),
        ("multiplier", "0", MULTIPLIER_ABOVE_ZERO),
        ("multiplier", "-1.5", MULTIPLIER_ABOVE_ZERO),
    ],
)
def test_campaign_form_refuses_a_number_below_its_range_beside_its_field(
    client, login, no_campaigns, field, value, message
):
    """Found by an audit: these came from the database constraints behind them, and the
    page said them above the form, marking no field."""
    login("Marketer")
    page = client.post(reverse("admin:points_campaign_add"), posted(**{field: value}))
    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {field: [message]}
    assert not Campaign.objects.exists()


def test_campaign_page_previews_how_many_members_it_reaches_now(
    client, login, tiers, no_campaigns, django_assert_max_num_queries
):
    # given four members, two born this month, one of them Gold
    this_month = timezone.localdate().replace(day=1, year=1990)
    other_month = (this_month + timedelta(days=40)).replace(day=1)
    gold = enrol("M-1", birth_date=this_month)
    Member.objects.filter(pk=gold.pk).update(effective_tier=tiers["gold"])
    enrol("M-2", birth_date=this_month)
    enrol("M-3", birth_date=other_month)
    enrol("M-4")
    now = timezone.now()
    birthday = Campaign.objects.create(
        name="Birthday", multiplier=2, starts_at=now, ends_at=now + timedelta(days=9)
    )
    birthday.birthday_month_only = True
    birthday.save()
    gold_birthday = Campaign.objects.create(
        name="Gold birthday",
        multiplier=2,
        starts_at=now,
        ends_at=now + timedelta(days=9),
        birthday_month_only=True,
    )
    gold_birthday.tiers.set([tiers["gold"]])
    login("Marketer")
    # when the marketer opens each campaign (its stack read at the programme's earn rate:
    # the programme, read once after the campaigns changed it)
    with django_assert_max_num_queries(24):
        page = client.get(reverse("admin:points_campaign_change", args=[birthday.pk]))
    gold_page = client.get(reverse("admin:points_campaign_change", args=[gold_birthday.pk]))
    # then each says how many members it reaches today
    month = f"{timezone.localdate():%B}"
    assert f"Reaches 2 members today, of 4 (those whose birthday is in {month})." in (
        page.content.decode()
    )
    assert "Reaches 1 member today, of 4" in gold_page.content.decode()
    # and, kept a few minutes, it is counted again as soon as the campaign changes
    gold_birthday.tiers.set([tiers["gold"], tiers["bronze"]])
    again = client.get(reverse("admin:points_campaign_change", args=[gold_birthday.pk]))
    assert "Reaches 2 members today, of 4" in again.content.decode()


def test_member_page_shows_birth_date_who_referred_them_and_whom_they_referred(
    client, login, tiers, no_campaigns, buy
):
    referrer = enrol("M-REF")
    friend = enrol("M-FRIEND", referred_by="M-REF", birth_date=date(1990, 3, 5))
    enrol("M-OTHER", referred_by="M-REF")
    buy(friend, "10")
    login("CX agent")
    friend_page = client.get(reverse("admin:members_member_change", args=[friend.pk]))
    referrer_page = client.get(reverse("admin:members_member_change", args=[referrer.pk]))
    # written so that no one reads 3 May (found by a walkthrough: "05/03/1990" reads as
    # 5 March or 3 May depending on who reads it); a supervisor corrects it (test_birth_dates)
    assert '<div class="readonly">5 Mar 1990</div>' in friend_page.content.decode()
    assert "Referred by <a" in friend_page.content.decode()
    paid = definition("refer-a-friend").points
    assert f"({paid:,} points paid at M-FRIEND's first purchase)" in friend_page.content.decode()
    text = referrer_page.content.decode()
    assert ">M-FRIEND</a> (has bought)" in text
    assert ">M-OTHER</a> (no purchase yet)" in text


def test_member_page_says_so_when_a_first_purchase_paid_the_referrer_nothing(
    client, login, tiers, no_campaigns, buy
):
    # given the referral points switched off before the friend's first purchase
    enrol("M-REF")
    friend = enrol("M-FRIEND", referred_by="M-REF")
    referral = definition("refer-a-friend")
    referral.is_active = False
    referral.save()
    buy(friend, "10")

    # when
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[friend.pk]))

    # then
    assert "(nothing paid: no referral points were due at M-FRIEND's first purchase)" in (
        page.content.decode()
    )


def test_adding_a_member_with_a_referrer_in_the_cx_manager(
    client, django_user_model, tiers, no_campaigns
):
    enrol("M-REF")
    client.force_login(django_user_model.objects.create_superuser("boss"))
    form = {
        "external_id": "M-NEW",
        "email": "new@example.com",
        "birth_date": "1991-07-01",
        "joined_at_0": "2026-03-01",
        "joined_at_1": "10:00:00",
    }
    refused = client.post(
        reverse("admin:members_member_add"), {**form, "referred_by_code": "M-NOBODY"}
    )
    assert refused.status_code == 200
    assert "No member with customer code M-NOBODY." in refused.content.decode()
    assert not Member.objects.filter(external_id="M-NEW").exists()
    added = client.post(reverse("admin:members_member_add"), {**form, "referred_by_code": "M-REF"})
    assert added.status_code == 302
    member = Member.objects.get(external_id="M-NEW")
    assert (member.referred_by.external_id, member.birth_date) == ("M-REF", date(1991, 7, 1))


def test_a_campaign_page_names_each_limit_on_purchases_and_no_other(client, login, tiers):
    now = timezone.now()
    tills = Campaign.objects.create(
        name="Tills", multiplier=2, starts_at=now, ends_at=now + timedelta(days=9)
    )
    tills.channels, tills.min_amount = ["pos"], Decimal("50.00")
    tills.save()
    everyone = Campaign.objects.create(
        name="Everyone", multiplier=2, starts_at=now, ends_at=now + timedelta(days=9)
    )
    login("Marketer")

    limited = client.get(reverse("admin:points_campaign_change", args=[tills.pk]))
    open_to_all = client.get(reverse("admin:points_campaign_change", args=[everyone.pk]))

    assert ", on their purchases through its channels and of at least 50.00." in (
        limited.content.decode()
    )
    assert "on their purchases" not in open_to_all.content.decode()


def test_P3_a_campaign_not_started_yet_reaches_no_one_today_and_says_when_it_starts(
    client, login, make_member, tiers, no_campaigns
):
    # given: a Gold campaign from the first of next year, and one Gold member of two
    make_member("M-1")
    Member.objects.filter(pk=make_member("M-2").pk).update(effective_tier=tiers["gold"])
    starts = timezone.make_aware(datetime(timezone.localdate().year + 1, 1, 1))
    later = Campaign.objects.create(
        name="New year", multiplier=2, starts_at=starts, ends_at=starts + timedelta(days=7)
    )
    later.tiers.set([tiers["gold"]])
    login("Marketer")

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[later.pk]))

    # then
    assert (
        f"Reaches no one today: it starts on 1 Jan {starts.year}, 00:00. Its audience: 1 "
        "member, of 2." in page.content.decode()
    )
