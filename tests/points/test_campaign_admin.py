"""P3 in the CX Manager: a campaign list that tells campaigns apart (tiers, channels,
status), validation in a marketer's words, and a warning when campaigns stack."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from points.models import Campaign

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def campaign(name, multiplier="2", starts=-1, ends=6, tiers=(), channels=(), active=True):
    """A campaign from `starts` to `ends` days from now."""
    now = timezone.now()
    made = Campaign.objects.create(
        name=name,
        multiplier=Decimal(multiplier),
        starts_at=now + starts * DAY,
        ends_at=now + ends * DAY,
        channels=list(channels),
        is_active=active,
    )
    made.tiers.set(tiers)
    return made


def posted(name="Double week", multiplier="2", starts="2030-03-01", ends="2030-03-08", **more):
    return {
        "name": name,
        "multiplier": multiplier,
        "starts_at_0": starts,
        "starts_at_1": "00:00:00",
        "ends_at_0": ends,
        "ends_at_1": "00:00:00",
        "is_active": "on",
        **more,
    }


def local(day: str) -> datetime:
    """Midnight of `day` in the programme's time zone, as the form reads a posted day."""
    return datetime.fromisoformat(day).replace(tzinfo=timezone.get_current_timezone())


def rows(page) -> dict[str, str]:
    """The changelist's rows as text, by campaign name."""
    return {
        c.name: page.content.decode().split(f">{c.name}</a>")[1].split("</tr>")[0]
        for c in page.context["cl"].result_list
    }


REFUSED = [
    (dict(starts="2030-03-08", ends="2030-03-01"), "The campaign must end after it starts"),
    (dict(starts="2030-03-01", ends="2030-03-01"), "The campaign must end after it starts"),
    (dict(multiplier="0"), "The multiplier must be above 0"),
    (dict(multiplier="-1.5"), "The multiplier must be above 0"),
    (dict(multiplier="1000000000"), "A multiplier is at most x100"),
    (dict(multiplier="two"), "Enter a number"),
    (dict(ends="2030-02-30"), "Enter a real date, as 2026-12-20"),
    (dict(channels="teleport"), "Select a valid choice"),
    # the rule's bound, not the column's "no more than 12 digits in total"
    (dict(min_amount="99999999999999999999"), "No purchase is above 100,000.00"),
]


def test_P3_a_campaign_that_breaks_a_rule_is_refused_in_words(client, login, no_campaigns):
    # given
    login("Marketer")

    # when
    pages = [client.post(reverse("admin:points_campaign_add"), posted(**v)) for v, _ in REFUSED]

    # then
    for page, (values, message) in zip(pages, REFUSED, strict=True):
        html = page.content.decode()
        assert page.status_code == 200, values
        assert message in html and "is violated" not in html, values
    assert not Campaign.objects.exists()


def test_P3_a_campaign_dated_before_1900_is_refused_beside_its_dates(client, login, no_campaigns):
    """Found by an audit: a start typed "0001" for "2001" was saved, and the campaign ran
    for every purchase back to year 1 (an import of old purchases included)."""
    login("Marketer")
    page = client.post(reverse("admin:points_campaign_add"), posted(starts="0001-03-01"))
    assert page.context["adminform"].form.errors == {
        "starts_at": ["A date before 1900 is a year typed wrong: check it."]
    }
    assert not Campaign.objects.exists()


def test_P3_a_campaign_of_the_widest_dates_is_saved_and_listed_with_its_status(
    client, login, no_campaigns
):
    # given
    login("Marketer")

    # when: the earliest start and the latest end the form takes
    saved = client.post(
        reverse("admin:points_campaign_add"),
        posted("Forever", starts="1900-01-01", ends="9999-12-31"),
    )
    page = client.get(reverse("admin:points_campaign_changelist"))

    # then
    assert saved.status_code == 302
    assert "Running" in rows(page)["Forever"]


def test_P3_the_campaign_list_shows_tiers_channels_and_status(client, login, tiers, no_campaigns):
    # given
    login("Marketer")
    campaign("Gold online week", tiers=[tiers["gold"], tiers["platinum"]], channels=["ecommerce"])
    campaign("Spring double", starts=10, ends=20)
    campaign("Spring and a half", multiplier="1.5", starts=10, ends=20)
    campaign("Winter double", starts=-20, ends=-10)
    campaign("Paused double", active=False)

    # when
    page = client.get(reverse("admin:points_campaign_changelist"))

    # then
    shown = rows(page)
    assert "Gold, Platinum" in shown["Gold online week"]
    assert "E-commerce" in shown["Gold online week"] and "Running" in shown["Gold online week"]
    assert "All tiers" in shown["Spring double"] and "All channels" in shown["Spring double"]
    assert "Scheduled" in shown["Spring double"]
    assert "x2" in shown["Spring double"] and "x1.5" in shown["Spring and a half"]
    assert "Ended" in shown["Winter double"]
    assert "Inactive" in shown["Paused double"]


@pytest.mark.parametrize(
    "status, names",
    [
        ("running", ["Now"]),
        ("scheduled", ["Later"]),
        ("ended", ["Before"]),
        ("inactive", ["Off"]),
        ("nonsense", []),
    ],
)
def test_P3_the_campaign_list_filters_by_status(client, login, no_campaigns, status, names):
    # given
    login("Marketer")
    campaign("Now")
    campaign("Later", starts=10, ends=20)
    campaign("Before", starts=-20, ends=-10)
    campaign("Off", active=False)

    # when
    page = client.get(reverse("admin:points_campaign_changelist"), {"status": status})

    # then
    assert page.status_code == 200
    assert [c.name for c in page.context["cl"].result_list] == names


def test_P3_the_campaign_list_takes_the_same_queries_for_3_or_30_campaigns(
    client, login, tiers, no_campaigns, django_assert_max_num_queries
):
    # given
    login("Marketer")
    for i in range(3):
        campaign(f"C{i}", tiers=[tiers["gold"]], channels=["pos"])
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("admin:points_campaign_changelist"))
    for i in range(3, 30):
        campaign(f"C{i}", tiers=[tiers["gold"]], channels=["pos"])

    # when / then
    with django_assert_max_num_queries(len(few)):
        page = client.get(reverse("admin:points_campaign_changelist"))
    shown = rows(page)
    assert len(shown) == 30
    assert all('<td class="field-tier_names">Gold</td>' in row for row in shown.values())


def test_P3_saving_a_campaign_that_stacks_warns_what_a_member_of_each_tier_earns(
    client, login, tiers, no_campaigns
):
    # given: a x2 campaign for everyone running in March 2030
    login("Marketer")
    Campaign.objects.create(
        name="Double points",
        multiplier=2,
        starts_at=local("2030-03-01"),
        ends_at=local("2030-03-15"),
    )

    # when: a second x2 campaign for Gold overlaps it
    response = client.post(
        reverse("admin:points_campaign_add"),
        posted("Gold week", starts="2030-03-10", ends="2030-03-20", tiers=[tiers["gold"].pk]),
    )

    # then
    assert response.status_code == 302
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [
        "Campaigns stack: from 10 Mar 2030, 00:00 to 15 Mar 2030, 00:00 this campaign runs "
        "with Double points (x2); a Gold member (x2) would earn x8."
    ]


def test_P3_a_stack_that_makes_tills_refuse_large_purchases_says_from_what_amount(
    client, login, tiers, no_campaigns
):
    # given: a x100 campaign running in March 2030 (found by an audit: a marketer read
    # "x1440000", and could not tell that tills would then refuse purchases)
    login("Marketer")
    Campaign.objects.create(
        name="Launch", multiplier=100, starts_at=local("2030-03-01"), ends_at=local("2030-03-15")
    )

    # when: a second x100 campaign overlaps it: a Platinum member (x3) earns x30,000
    response = client.post(
        reverse("admin:points_campaign_add"), posted("Launch again", multiplier="100")
    )

    # then: the rate with separators, and the amount above which a purchase is refused
    (warning,) = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert "a Platinum member (x3) x30,000" in warning
    assert warning.endswith(
        "At that rate a purchase above 33,333.33 would earn more than one purchase may "
        "(1,000,000,000 points): the till's purchase is refused."
    )


def test_P3_the_campaign_form_warns_of_every_tier_a_stack_reaches(
    client, login, tiers, no_campaigns
):
    # given
    login("Marketer")
    campaign("Double points")
    weekend = campaign("Weekend x1.5", multiplier="1.5", starts=0, ends=2, channels=["pos"])

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[weekend.pk]))

    # then
    html = page.content.decode()
    assert "this campaign runs with Double points (x2); a Bronze member (x1) would earn x3" in html
    assert "a Silver member (x1.5) x4.5, a Gold member (x2) x6, a Platinum member (x3) x9." in html


def test_P3_only_campaigns_that_apply_together_are_named_in_the_warning(
    client, login, tiers, no_campaigns
):
    # given: a Gold campaign at the tills, and five others
    login("Marketer")
    campaign("Later", starts=10, ends=20)
    campaign("Online", channels=["ecommerce"])
    campaign("Silver only", tiers=[tiers["silver"]])
    campaign("Switched off", active=False)
    campaign("Everywhere x3", multiplier="3")
    mine = campaign("Gold till days", channels=["pos"], tiers=[tiers["gold"]])

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[mine.pk]))

    # then
    html = page.content.decode()
    warning = html.split('id="campaign-stacks"')[1].split("</ul>")[0]
    assert "this campaign runs with Everywhere x3 (x3); a Gold member (x2) would earn x12." in (
        warning
    )
    for name in ["Later", "Online", "Silver only", "Switched off"]:
        assert name not in warning


def test_P3_campaigns_of_different_stores_do_not_stack_and_audiences_are_named(
    client, login, tiers, no_campaigns
):
    # given: a campaign at STORE-01, one at STORE-02, one everywhere from 50.00 spent
    login("Marketer")
    Campaign.objects.filter(pk=campaign("Store two").pk).update(stores=["STORE-02"])
    big = campaign("Big baskets", multiplier="1.5")
    Campaign.objects.filter(pk=big.pk).update(min_amount=Decimal("50.00"))
    mine = campaign("Store one")
    Campaign.objects.filter(pk=mine.pk).update(stores=["STORE-01"])

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[mine.pk]))

    # then: only the campaign that can meet it at STORE-01 is named, with the audience
    warning = page.content.decode().split('id="campaign-stacks"')[1].split("</ul>")[0]
    assert "this campaign runs with Big baskets (x1.5); a Bronze member (x1) would earn x3" in (
        warning
    )
    assert "on a purchase in every campaign&#x27;s audience." in warning
    assert "Store two" not in warning


def test_a_store_code_with_a_null_character_is_refused_and_nothing_saved(client, login, tiers):
    login("Marketer")

    page = client.post(reverse("admin:points_campaign_add"), posted(stores="STORE-01,\x00"))

    assert page.status_code == 200
    assert "Null characters are not allowed." in str(
        page.context["adminform"].form.errors["stores"]
    )
    assert not Campaign.objects.filter(name="Double week").exists()


@pytest.mark.parametrize("store", ["\u200b", "STORE\u202e-01", "\ufeffSTORE-01"])
def test_a_store_code_with_an_invisible_character_is_refused_and_nothing_saved(
    client, login, tiers, store
):
    login("Marketer")

    page = client.post(reverse("admin:points_campaign_add"), posted(stores=f"STORE-02,{store}"))

    assert page.status_code == 200
    assert "A store code cannot hold an invisible character" in str(
        page.context["adminform"].form.errors["stores"]
    )
    assert not Campaign.objects.filter(name="Double week").exists()


def test_P3_a_campaign_that_started_is_switched_off_not_deleted(client, login, no_campaigns):
    # given: one campaign that started (switched off since), one not started yet
    login("Marketer")
    ran = campaign("Spring double", starts=-10, ends=-3, active=False)
    planned = campaign("Summer double", starts=30, ends=37)

    # when: the marketer deletes the first
    response = client.post(reverse("admin:points_campaign_delete", args=[ran.pk]), {"post": "yes"})

    # then: it stays, and the marketer reads why and what to do instead
    assert response.status_code == 302
    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    assert len(errors) == 1
    assert errors[0].startswith("“Spring double” started on ")
    assert "switch it off instead of deleting it" in errors[0]
    assert Campaign.objects.filter(pk=ran.pk).exists()
    page = client.get(reverse("admin:points_campaign_change", args=[ran.pk])).content.decode()
    assert "deletelink" not in page

    # and: a campaign never started can still be deleted
    client.post(reverse("admin:points_campaign_delete", args=[planned.pk]), {"post": "yes"})
    assert not Campaign.objects.filter(pk=planned.pk).exists()


def test_P3_a_campaign_starting_within_a_day_is_kept_a_purchase_may_be_dated_in_it(
    client, login, no_campaigns, make_member, buy
):
    """Found by a race audit: a campaign starting in an hour was deleted after (or while)
    a till recorded a purchase dated in it, a day ahead being allowed; the ledger line
    it multiplied named a campaign gone from the analytics."""
    login("Marketer")
    now = timezone.now()
    soon = campaign("Race double", starts=1 / 24, ends=1)
    buy(make_member(), "20", when=now + 2 * DAY / 24, channel="pos")

    response = client.post(reverse("admin:points_campaign_delete", args=[soon.pk]), {"post": "yes"})

    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    assert errors == [
        "“Race double” starts within a day, and purchases dated in it may already have earned "
        "under it: switch it off instead of deleting it, so that what it earned stays in the "
        "programme analytics and in the ledger's lines."
    ]
    assert Campaign.objects.filter(pk=soon.pk).exists()


def test_P3_a_campaign_that_earned_points_keeps_its_start_in_the_past(
    client, login, no_campaigns, make_member, buy
):
    """A marketer moved a campaign that had started an hour before to next week, then
    deleted it as "not started yet": what it had added that day left the analytics,
    whose nightly results had not counted it yet (found by an audit)."""
    # given: "Flash double" started an hour ago, and a purchase earned under it
    login("Marketer")
    now = timezone.now()
    flash = campaign("Flash double", starts=-1 / 24, ends=1)
    idle = campaign("Idle double", starts=-1 / 24, ends=1, channels=["ecommerce"])
    buy(make_member(), "100", when=now, channel="pos")

    # when: the marketer moves both to next week
    moved = {
        c.name: client.post(
            reverse("admin:points_campaign_change", args=[c.pk]),
            posted(c.name, starts=f"{now + 7 * DAY:%Y-%m-%d}", ends=f"{now + 14 * DAY:%Y-%m-%d}"),
        )
        for c in (flash, idle)
    }

    # then: the one that earned keeps its dates, and the marketer reads why
    refused = moved["Flash double"].context["adminform"].form.errors["starts_at"]
    assert refused == [
        "“Flash double” has earned points since it started: its start stays no later than "
        "now, so that what it earned stays in its results. To run it later, end it now "
        "and add a new campaign for the later dates."
    ]
    assert Campaign.objects.get(pk=flash.pk).starts_at == flash.starts_at
    # the one no purchase earned under moves, and can then be deleted
    assert moved["Idle double"].status_code == 302
    client.post(reverse("admin:points_campaign_delete", args=[idle.pk]), {"post": "yes"})
    assert not Campaign.objects.filter(pk=idle.pk).exists()


def test_P3_a_campaign_not_started_that_earned_on_a_purchase_dated_ahead_keeps_its_start(
    client, login, no_campaigns, make_member, buy
):
    """From an audit: a till dated a purchase inside a campaign starting in 6 hours; the
    marketer moved the campaign to next week, then deleted it as "not started"."""
    # given: "Soon triple" starts in 6 hours, and a purchase dated in it earned under it,
    # after the snapshot job took yesterday (which did not count it)
    from points.models import DailyPoints

    DailyPoints.objects.create(day=timezone.localdate() - DAY)
    login("Marketer")
    now = timezone.now()
    soon = campaign("Soon triple", starts=6 / 24, ends=3)
    buy(make_member(), "100", when=soon.starts_at + DAY / 24, channel="pos")

    # when: the marketer moves it to next week
    moved = client.post(
        reverse("admin:points_campaign_change", args=[soon.pk]),
        posted(soon.name, starts=f"{now + 7 * DAY:%Y-%m-%d}", ends=f"{now + 14 * DAY:%Y-%m-%d}"),
    )

    # then: refused, saying why, and the dates stay
    assert moved.context["adminform"].form.errors["starts_at"] == [
        "“Soon triple” has already earned points on a purchase dated in it: its start cannot "
        "move later, so that what it earned stays in its results. To run it later, switch it "
        "off and add a new campaign for the later dates."
    ]
    assert Campaign.objects.get(pk=soon.pk).starts_at == soon.starts_at
    # and moved past the form (a script), it is still not deleted: the ledger names it
    Campaign.objects.filter(pk=soon.pk).update(starts_at=now + 7 * DAY, ends_at=now + 14 * DAY)
    client.post(reverse("admin:points_campaign_delete", args=[soon.pk]), {"post": "yes"})
    assert Campaign.objects.filter(pk=soon.pk).exists()


def test_P3_a_campaign_s_tiers_are_chosen_not_added_and_its_end_is_corrected_beside_it(
    client, login, tiers, no_campaigns
):
    """From an audit of the marketer's pages: the "+" beside the tiers' checkboxes added
    a tier (and requalified every member) that the checkboxes never showed; an end
    before the start was said above the form, beside no field."""
    login("Marketer")

    page = client.get(reverse("admin:points_campaign_add")).content.decode()
    wrong = client.post(
        reverse("admin:points_campaign_add"), posted(starts="2030-03-08", ends="2030-03-01")
    )

    assert 'id="add_id_tiers"' not in page and "related-widget-wrapper-link" not in page
    assert wrong.context["adminform"].form.errors["ends_at"] == [
        "The campaign must end after it starts: check its start and end."
    ]


def test_P3_a_running_campaign_warns_only_of_stacks_still_to_come(client, login, no_campaigns):
    """A year-long campaign warned that it "runs with" a campaign that ended last month
    (found by an audit): nothing the marketer can still change."""
    # given: a running campaign, one that ran with it and ended, one still to come
    login("Marketer")
    year = campaign("Birthday double", starts=-100, ends=200)
    campaign("Summer flash", starts=-60, ends=-30)
    campaign("Winter flash", starts=10, ends=20)

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[year.pk])).content.decode()

    # then
    assert "Winter flash" in page and "Summer flash" not in page


def test_P3_a_campaign_is_named_with_its_multiplier_as_the_list_writes_it(no_campaigns):
    flash = campaign("Flash", multiplier="2.5")

    assert [str(flash), str(Campaign.objects.get(pk=flash.pk))] == ["Flash (x2.5)", "Flash (x2.5)"]


def test_P3_each_date_and_time_input_has_its_own_label(client, login, tiers, no_campaigns):
    """A screen reader read the start's and end's inputs with no name: "Date:" and
    "Time:" were bare text (found by an audit)."""
    login("Marketer")

    page = client.get(reverse("admin:points_campaign_add")).content.decode()

    for field in ("starts_at", "ends_at"):
        assert f'<label for="id_{field}_0">Date:</label>' in page
        assert f'<label for="id_{field}_1">Time:</label>' in page
