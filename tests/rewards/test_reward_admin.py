"""The reward's page in the CX Manager: the stock a marketer saves never undoes the
redemptions made while the page was open, and is at most MAX_STOCK."""

import html
import threading
from datetime import datetime

import pytest

from points.services import adjust_points
from rewards.models import Reward
from rewards.services import redeem
from tests.admin_pages import form_values
from tests.conftest import MADRID, postgres_only
from tests.rewards.races import redemption_uncommitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def mug_page(client, login, tiers):
    """A mug with 10 in stock, its page open in a marketer's browser."""
    mug = Reward.objects.create(name="Mug", points_cost=100, stock=10)
    login("Marketer")
    url = f"/admin/rewards/reward/{mug.pk}/change/"
    return mug, url, form_values(client.get(url).content.decode())


def three_redeemed(mug, make_member, staff):
    for _ in range(3):
        buyer = make_member()
        adjust_points(member=buyer, points=100, reason="Welcome", by=staff)
        redeem(member=buyer, reward=mug)


def test_saving_a_reward_keeps_the_units_redeemed_while_its_page_was_open(
    client, mug_page, make_member, staff
):
    mug, url, values = mug_page
    three_redeemed(mug, make_member, staff)
    # when: the marketer fixes the description and saves
    assert client.post(url, {**values, "description": "Now in blue"}).status_code == 302
    # then: 7 mugs left, not 10 again
    mug.refresh_from_db()
    assert (mug.description, mug.stock) == ("Now in blue", 7)


def test_a_stock_set_while_redemptions_changed_it_is_asked_again(
    client, mug_page, make_member, staff
):
    mug, url, values = mug_page
    three_redeemed(mug, make_member, staff)
    # when: the marketer sets 20, read against the 10 the page showed
    page = client.post(url, {**values, "stock": "20"})
    # then: refused with why; the stock is the redemptions'
    assert page.status_code == 200
    assert "Redemptions changed the stock while this page was open (now 7 left)" in (
        page.content.decode()
    )
    mug.refresh_from_db()
    assert mug.stock == 7


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_stock_saved_while_a_redemption_commits_keeps_the_unit_it_took(
    client, mug_page, make_member, staff
):
    """Found by a race audit: a redemption had taken a unit but not committed when the
    page's stock was checked; the save then waited for it and wrote 20 over its 9."""
    mug, url, values = mug_page
    buyer = make_member()
    adjust_points(member=buyer, points=100, reason="Welcome", by=staff)
    with redemption_uncommitted(buyer, mug) as commit:
        threading.Timer(0.5, commit.set).start()  # commits while the save below runs
        # when: the marketer sets 20, read against the 10 the page showed
        page = client.post(url, {**values, "stock": "20"})

    # then: refused, and the unit the redemption took stays taken
    assert "Redemptions changed the stock while this page was open (now 9 left)" in (
        page.content.decode()
    )
    mug.refresh_from_db()
    assert mug.stock == 9


def test_a_stock_above_a_billion_is_refused(client, mug_page):
    mug, url, values = mug_page
    page = client.post(url, {**values, "stock": "2147483647"})
    assert "At most 1,000,000,000: leave the stock empty for unlimited." in page.content.decode()
    mug.refresh_from_db()
    assert mug.stock == 10


def test_after_the_stock_was_asked_again_the_next_save_sets_it(
    client, mug_page, make_member, staff
):
    mug, url, values = mug_page
    three_redeemed(mug, make_member, staff)
    asked = client.post(url, {**values, "stock": "20"}).content.decode()
    # when: the marketer, having read it, saves the page again with 20
    again = form_values(asked)
    assert again["stock"] == "20"
    assert client.post(url, again).status_code == 302
    # then: 20 it is
    mug.refresh_from_db()
    assert mug.stock == 20


def test_saving_a_reward_keeps_what_another_marketer_saved_while_its_page_was_open(
    client, mug_page
):
    mug, url, values = mug_page
    # given: another marketer raises the cost to 150 meanwhile
    Reward.objects.filter(pk=mug.pk).update(points_cost=150)
    # when: this marketer fixes the description on the page opened before
    assert client.post(url, {**values, "description": "Now in blue"}).status_code == 302
    # then: both changes stand
    mug.refresh_from_db()
    assert (mug.description, mug.points_cost) == ("Now in blue", 150)


@pytest.fixture
def april_page(client, login, tiers):
    """A mug offered from 1 March to 1 April 2026, its page open in a marketer's browser
    (the window's date and time fields as the browser sends them back)."""
    mug = Reward.objects.create(
        name="Mug",
        points_cost=100,
        available_from=datetime(2026, 3, 1, tzinfo=MADRID),
        available_until=datetime(2026, 4, 1, tzinfo=MADRID),
    )
    login("Marketer")
    url = f"/admin/rewards/reward/{mug.pk}/change/"
    return mug, url, form_values(client.get(url).content.decode())


def test_W1_saving_a_reward_keeps_the_window_another_marketer_saved_while_its_page_was_open(
    client, april_page
):
    """A marketer who fixes a reward's description on a page opened before a colleague
    ended the offer early does not put the old end back."""
    # given: another marketer ends the offer on 10 March meanwhile
    mug, url, values = april_page
    Reward.objects.filter(pk=mug.pk).update(available_until=datetime(2026, 3, 10, tzinfo=MADRID))

    # when: this marketer fixes the description on the page opened before
    assert client.post(url, {**values, "description": "Now in blue"}).status_code == 302

    # then: both changes stand
    mug.refresh_from_db()
    assert mug.description == "Now in blue"
    assert mug.available_until == datetime(2026, 3, 10, tzinfo=MADRID)


def test_W1_a_start_after_the_end_another_marketer_saved_meanwhile_is_refused_in_words(
    client, april_page
):
    """The window is checked as it will be saved: a start typed after the end a colleague
    saved while the page was open is refused beside what changed, not a server error."""
    # given: another marketer ends the offer on 10 March meanwhile
    mug, url, values = april_page
    Reward.objects.filter(pk=mug.pk).update(available_until=datetime(2026, 3, 10, tzinfo=MADRID))

    # when: this marketer moves the start to 15 March on the page opened before
    page = client.post(url, {**values, "available_from_0": "15/03/2026"})

    # then: refused, saying which value was changed meanwhile and what it is now
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "“Available until” must be after “Available from”." in text
    assert "Changed while this page was open: Available until (now 10 Mar 2026 00:00)." in text
    mug.refresh_from_db()
    assert mug.available_from == datetime(2026, 3, 1, tzinfo=MADRID)
    assert mug.available_until == datetime(2026, 3, 10, tzinfo=MADRID)


def test_W1_a_text_of_several_lines_left_alone_is_not_said_to_have_changed_meanwhile(
    client, mug_page
):
    """Found by an audit: any refusal on a page whose text has line breaks (a tier's
    benefits, a reward's description) also said "Changed while this page was open:
    Description (now ...)", though nobody had changed it: the browser sends its line
    breaks as CR LF, and the row keeps LF."""
    # given: a description of two lines, the page open
    mug, url, _ = mug_page
    Reward.objects.filter(pk=mug.pk).update(description="Blue\nLarge")
    values = form_values(client.get(url).content.decode())
    values = {
        name: value.replace("\n", "\r\n") if isinstance(value, str) else value
        for name, value in values.items()
    }

    # when: the marketer types a cost of 0
    page = client.post(url, {**values, "points_cost": "0"})

    # then: only what is wrong is said
    text = html.unescape(page.content.decode())
    assert page.status_code == 200 and "A reward costs at least 1 point." in text
    assert "Changed while this page was open" not in text


def test_W1_a_redeemed_reward_cannot_be_deleted_and_its_page_says_how_many_vouchers_name_it(
    client, login, rich, catalogue, django_assert_max_num_queries
):
    """A marketer who tries to delete a reward customers have redeemed is told how many
    redemptions keep it and to switch it off, not that they lack a permission to delete
    redemptions (which nobody has: vouchers are never deleted)."""
    # given: three coffee vouchers, and a marketer on the coffee's delete page
    coffee = catalogue["Coffee voucher"]
    for _ in range(3):
        redeem(member=rich, reward=coffee)
    login("Marketer")
    url = f"/admin/rewards/reward/{coffee.pk}/delete/"

    # when
    with django_assert_max_num_queries(12):  # counted, whatever the number of vouchers
        page = client.get(url)
    client.post(url, {"post": "yes"})

    # then: what keeps it, counted, and what to do instead; nothing deleted
    assert page.status_code == 200
    assert page.context["protected"] == [
        "Redemptions: 3 name Coffee voucher (150 points)",
        "Switch it off instead (untick “Is active”): its vouchers stay as they are.",
    ]
    assert "permission to delete" not in page.content.decode()
    assert Reward.objects.filter(pk=coffee.pk).exists()


def test_W1_a_reward_nobody_redeemed_can_be_deleted(client, login, tiers):
    mug = Reward.objects.create(name="Mug", points_cost=100)
    login("Marketer")
    url = f"/admin/rewards/reward/{mug.pk}/delete/"

    assert not client.get(url).context["protected"]
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Reward.objects.filter(pk=mug.pk).exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "\u200b\u200b", "Give the reward a name people can read."),
        (
            "name",
            "Mug\u200b",
            "A reward's name cannot hold an invisible character (U+200B ZERO WIDTH SPACE, "
            "character 4): it would look like another name.",
        ),
        (
            "voucher_value",
            "99999999.99",
            "A voucher takes off at most 100,000.00, the largest amount a purchase may "
            "have: more could never be used.",
        ),
        (
            "points_cost",
            "3000000000",
            "A reward costs at most 1,000,000,000 points: more is a typing error.",
        ),
        # Twenty digits: the rule's bound, not the column's ("no more than 10 digits in
        # total", "less than or equal to 2147483647")
        (
            "voucher_value",
            "99999999999999999999",
            "A voucher takes off at most 100,000.00, the largest amount a purchase may "
            "have: more could never be used.",
        ),
        ("voucher_valid_days", "99999999999999999999", "A voucher is valid from 1 to 3,660 days."),
        # One message for 0 and -5 (a plain positive field told -5 "at least 0")
        ("voucher_valid_days", "-5", "A voucher is valid from 1 to 3,660 days."),
        ("voucher_valid_days", "0", "A voucher is valid from 1 to 3,660 days."),
        # The lower bounds too, beside their field and not above the form (the database
        # constraint's message, naming no field, until an audit found it)
        ("points_cost", "0", "A reward costs at least 1 point."),
        ("points_cost", "-5", "A reward costs at least 1 point."),
        ("voucher_value", "0", "A voucher's value is more than 0, or empty."),
        ("voucher_value", "-5.00", "A voucher's value is more than 0, or empty."),
    ],
)
def test_W1_a_reward_s_absurd_name_value_or_cost_is_refused_beside_its_field(
    client, mug_page, field, value, message
):
    """What the marketer meets: a name of invisible characters (pasted from a design
    tool) is saved and shows as an empty line in the catalogue; a voucher worth
    99,999,999.99, more than any purchase the till may record, is saved; on SQLite a cost
    of three billion points is saved (PostgreSQL answers with its column's range)."""
    # given
    mug, url, values = mug_page

    # when
    page = client.post(url, {**values, field: value})

    # then: one message beside the field, and nothing saved
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert errors == {field: [message]}
    assert Reward.objects.get(pk=mug.pk).name == "Mug"


def test_W1_a_reward_window_dated_before_1900_is_refused_beside_its_field(client, mug_page):
    """Found by an audit: "0001" typed for "2001" was saved as the window's start."""
    mug, url, values = mug_page
    typed = {"available_from_0": "0001-03-01", "available_from_1": "00:00:00"}
    page = client.post(url, {**values, **typed})
    assert page.context["adminform"].form.errors == {
        "available_from": ["A date before 1900 is a year typed wrong: check it."]
    }
    assert Reward.objects.get(pk=mug.pk).available_from is None


@pytest.mark.parametrize(
    "typed",
    ["coffee VOUCHER", "Coffee\u00a0voucher", "Coffee  voucher", "Coffee voucher "],
    ids=["case", "non-breaking-space", "two-spaces", "trailing-space"],
)
def test_W1_a_second_reward_offered_under_one_name_is_refused_naming_the_first(
    client, login, tiers, typed
):
    """Found by audits: "Coffee voucher" (100 points) beside "Coffee voucher" (150)
    was saved, and the catalogue listed two rewards nobody could tell apart; and so
    was one whose space was a non-breaking space pasted from a design tool."""
    # given
    Reward.objects.create(name="Coffee voucher", points_cost=150)
    login("Marketer")
    add = {"name": typed, "points_cost": "100", "voucher_valid_days": "90"}
    add["is_active"] = "on"

    # when: offered under the same name, then switched off (kept, not offered)
    offered = client.post("/admin/rewards/reward/add/", add)
    kept = client.post("/admin/rewards/reward/add/", {**add, "is_active": ""})

    # then
    assert offered.context["adminform"].form.errors == {
        "name": [
            "The reward Coffee voucher (150 points) is offered under this name: switch it "
            "off first, or name this one otherwise."
        ]
    }
    # kept under the name as it reads: one plain space
    assert kept.status_code == 302
    assert Reward.objects.filter(name__iexact="coffee voucher").count() == 2


def test_W1_a_reward_named_with_a_decomposed_accent_is_kept_composed(client, login, tiers):
    """ "Café" typed on a Mac (an e and a combining accent) is the same name as "Café"."""
    login("Marketer")
    add = {"name": "Cafe\u0301 au lait", "points_cost": "100", "voucher_valid_days": "90"}

    client.post("/admin/rewards/reward/add/", {**add, "is_active": "on"})

    assert Reward.objects.get().name == "Caf\u00e9 au lait"


def test_W1_a_reward_s_tier_is_chosen_not_added_or_deleted_from_its_page(client, mug_page):
    """A tier is managed on its own page: the cross beside "Min tier" deleted one from a
    reward's page (found by an audit)."""
    mug, url, values = mug_page

    page = client.get(url).content.decode()

    assert 'id="delete_id_min_tier"' not in page and 'id="add_id_min_tier"' not in page


def test_W1_the_reward_list_writes_costs_and_stock_as_staff_read_them(client, login, tiers):
    """The list wrote 15000 and "-" beside the tiers list's 1,000 (found by an audit)."""
    Reward.objects.create(name="Weekend away", points_cost=15_000, stock=2_500)
    Reward.objects.create(name="Coffee", points_cost=150)
    login("Marketer")

    listed = client.get("/admin/rewards/reward/").content.decode()

    assert "15,000" in listed and "2,500" in listed and "Unlimited" in listed


def test_W1_a_reward_s_window_inputs_each_have_a_label(client, mug_page):
    mug, url, values = mug_page

    page = client.get(url).content.decode()

    assert '<label for="id_available_from_0">Date:</label>' in page
    assert '<label for="id_available_until_1">Time:</label>' in page
