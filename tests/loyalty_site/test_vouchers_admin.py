"""Vouchers in the CX Manager (W5): the member page and the redemption list show each
voucher's code and status; the list finds a code as the customer reads it; CX agents
mark a voucher used at the desk (once, after a confirmation), marketers do not; a used
voucher cannot be cancelled."""

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from points.services import adjust_points
from rewards.codes import masked
from rewards.models import Redemption, VoucherStatus
from rewards.services import cancel_redemption, redeem, use_voucher
from tests.conftest import summary

pytestmark = pytest.mark.django_db

LIST = "admin:rewards_redemption_changelist"


@pytest.fixture
def four(rich, catalogue, staff):
    """One voucher of each status: valid, used at STORE-07, expired, cancelled."""
    five, coffee = catalogue["5 euro voucher"], catalogue["Coffee voucher"]
    valid = redeem(member=rich, reward=five, by=staff)
    used = redeem(member=rich, reward=coffee, by=staff)
    use_voucher(code=used.code, external_id="RECEIPT-1", channel="pos", store="STORE-07")
    expired = redeem(member=rich, reward=coffee, now=timezone.now() - timedelta(days=100))
    cancelled = redeem(member=rich, reward=coffee)
    cancel_redemption(redemption=cancelled, by=staff)
    return {
        "valid": Redemption.objects.get(pk=valid.pk),
        "used": Redemption.objects.get(pk=used.pk),
        "expired": Redemption.objects.get(pk=expired.pk),
        "cancelled": Redemption.objects.get(pk=cancelled.pk),
    }


def day(moment) -> str:
    return f"{timezone.localtime(moment):%-d %b %Y}"


def redemption_rows(html: str) -> list[str]:
    panel = html.split('id="redemptions"')[1].split("</section>")[0]
    return panel.split("</thead>")[-1].split("<tr>")[1:]  # its rows, below the headings


def test_W5_the_member_page_shows_each_voucher_s_code_and_status(client, login, rich, four):
    # given
    login("CX agent")

    # when
    html = client.get(reverse("admin:members_member_change", args=[rich.pk])).content.decode()

    # then: one row per redemption, newest first, each with its code and status
    rows = redemption_rows(html)
    assert len(rows) == 4
    by_code = {r.shown_code: r for r in four.values()}
    expected = {
        four["valid"].shown_code: f"Valid until {four['valid'].valid_until:%-d %b %Y}",
        four["used"].shown_code: f"Used {day(four['used'].used_at)}, STORE-07",
        four["expired"].shown_code: f"Expired {four['expired'].valid_until:%-d %b %Y}",
        four["cancelled"].shown_code: f"Cancelled {day(four['cancelled'].cancelled_at)}",
    }
    for row in rows:
        code = next(code for code in by_code if code in row)
        assert expected.pop(code) in row, row
        # Cancel… only where the voucher was not used nor cancelled
        assert ("Cancel…" in row) == by_code[code].is_cancellable, row
    assert not expected
    assert "5 euro voucher · 5.00" in html  # its value


def test_W5_redeeming_on_the_member_page_tells_the_agent_the_code(client, login, rich, catalogue):
    # given
    login("CX agent")
    url = reverse("admin:members_member_redeem", args=[rich.pk])
    five = catalogue["5 euro voucher"]
    asked = client.post(url, {"reward": five.pk, "token": uuid.uuid4()})
    assert "worth 5.00, valid for 90 days" in asked.content.decode()

    # when
    done = client.post(
        url,
        {
            "reward": five.pk,
            "token": uuid.uuid4(),
            "cost": five.points_cost,
            "value": "5.00",
            "valid_days": "90",
            "_confirm": "1",
        },
        follow=True,
    )

    # then
    made = Redemption.objects.get(member=rich)
    assert (
        f"Redeemed 5 euro voucher: voucher {made.shown_code}, valid until "
        f"{made.valid_until:%-d %b %Y}" in done.content.decode()
    )


def test_W5_the_redemption_list_finds_a_voucher_by_its_code_as_read_out(client, login, rich, four):
    login("CX agent")
    used = four["used"]
    for term in [used.code, used.shown_code, used.shown_code.lower(), used.shown_code + " "]:
        page = client.get(reverse(LIST), {"q": term})
        assert list(page.context["cl"].result_list) == [used], term
    # a code no voucher has finds nothing; the member's code still finds all four
    assert not client.get(reverse(LIST), {"q": "HK7M-2PXC-9RTA-4WNE"}).context["cl"].result_list
    found = client.get(reverse(LIST), {"q": rich.external_id}).context["cl"].result_list
    assert len(found) == 4


def test_W5_the_member_search_finds_who_redeemed_a_voucher_read_out(
    client, login, rich, make_member, four
):
    make_member("M-OTHER")
    login("CX agent")
    used = four["used"]
    spaced = " ".join(used.shown_code.lower().replace("-", ""))  # "h k 7 m ..."
    for term in [used.code, used.shown_code.lower(), spaced]:
        page = client.get(reverse("admin:members_member_changelist"), {"q": term})
        assert list(page.context["cl"].result_list) == [rich], term


def test_W5_the_redemption_list_shows_and_filters_by_voucher_status(client, login, rich, four):
    login("Marketer")
    html = client.get(reverse(LIST)).content.decode()
    for voucher in four.values():
        assert masked(voucher.code) in html  # a marketer does not use vouchers
    assert "STORE-07" in html
    for status in VoucherStatus:
        page = client.get(reverse(LIST), {"voucher": status.value})
        assert list(page.context["cl"].result_list) == [four[status.value]], status


def test_W5_the_redemption_list_runs_bounded_queries(
    client, login, rich, catalogue, django_assert_max_num_queries
):
    login("CX agent")
    for _ in range(30):
        redeem(member=rich, reward=catalogue["Coffee voucher"])
    with django_assert_max_num_queries(12):
        page = client.get(reverse(LIST))
    assert page.status_code == 200
    with django_assert_max_num_queries(12):
        code = Redemption.objects.first().shown_code
        assert client.get(reverse(LIST), {"q": code}).status_code == 200


def test_W5_a_cx_agent_marks_a_voucher_used_at_the_desk_once(client, login, rich, four):
    # given
    agent = login("CX agent")
    valid = four["valid"]
    chosen = {"action": "use", ACTION_CHECKBOX_NAME: [valid.pk]}

    # when: first the question
    asked = client.post(reverse(LIST), chosen)

    # then: the voucher is shown, nothing used yet
    assert "Mark these vouchers used?" in asked.content.decode()
    assert valid.shown_code in asked.content.decode()
    assert Redemption.objects.get(pk=valid.pk).used_at is None

    # when: confirmed, twice (a double click)
    token = asked.context["token"]
    first = client.post(reverse(LIST), {**chosen, "token": token}, follow=True)
    again = client.post(reverse(LIST), {**chosen, "token": token}, follow=True)

    # then: used once, by the agent, at the desk
    marked = f"Marked used: {valid.shown_code} ({valid.member.external_id})."
    assert marked in html.unescape(first.content.decode())
    assert "This page was already sent: no voucher was used twice." in again.content.decode()
    used = Redemption.objects.get(pk=valid.pk)
    assert used.voucher_status == VoucherStatus.USED
    assert (used.used_by, used.used_channel) == (agent, "manual")
    assert LogEntry.objects.filter(object_id=str(valid.pk), user=agent).count() == 1
    # and a till that tries it later, and the list, are told where it went
    with pytest.raises(ValidationError, match=r"was already used on .* at the desk\."):
        use_voucher(code=used.code, external_id="RECEIPT-LATE", channel="pos", store="S-1")
    assert used.voucher_summary.endswith(", the desk")


def test_W5_marking_a_used_or_expired_voucher_used_says_why_not(client, login, four):
    login("CX agent")
    chosen = {
        "action": "use",
        ACTION_CHECKBOX_NAME: [four["used"].pk, four["expired"].pk],
        "token": uuid.uuid4(),
    }

    page = client.post(reverse(LIST), chosen, follow=True).content.decode()

    assert "was already used on" in page and "expired: it was valid until" in page
    assert Redemption.objects.get(pk=four["expired"].pk).used_at is None


@pytest.mark.parametrize(
    "action, said",
    [
        ("use", "None of these vouchers can be used: each says why above."),
        ("cancel", "None of these redemptions can be cancelled: each says why above."),
    ],
)
def test_W5_a_selection_with_nothing_to_do_offers_no_yes(client, login, four, action, said):
    """Found by an audit: "Yes, mark used" was offered for vouchers all expired or used,
    and each was refused only after the click."""
    login("CX agent")
    chosen = {"action": action, ACTION_CHECKBOX_NAME: [four["used"].pk, four["cancelled"].pk]}
    if action == "use":
        chosen[ACTION_CHECKBOX_NAME].append(four["expired"].pk)

    page = client.post(reverse(LIST), chosen).content.decode()

    assert said in page
    assert 'type="submit"' not in page.split('id="content-main"')[1]


def test_W5_a_marketer_cannot_mark_a_voucher_used(client, login, four):
    login("Marketer")
    valid = four["valid"]

    page = client.get(reverse(LIST))
    client.post(
        reverse(LIST),
        {"action": "use", ACTION_CHECKBOX_NAME: [valid.pk], "token": uuid.uuid4()},
    )

    assert 'value="use"' not in page.content.decode()
    assert Redemption.objects.get(pk=valid.pk).used_at is None


def test_W4_cancelling_a_used_voucher_from_the_list_is_refused_with_the_reason(
    client, login, rich, four
):
    login("CX agent")
    used = four["used"]
    before = summary(rich)["available"]

    page = client.post(
        reverse(LIST),
        {"action": "cancel", ACTION_CHECKBOX_NAME: [used.pk], "reason": "Wants the points"},
        follow=True,
    ).content.decode()

    assert "a used voucher cannot be cancelled" in page
    assert Redemption.objects.get(pk=used.pk).status == "redeemed"
    assert summary(rich)["available"] == before


def test_W5_a_redemption_s_page_shows_its_voucher_and_where_it_was_used(client, login, four):
    login("CX agent")
    used = four["used"]

    page = client.get(reverse("admin:rewards_redemption_change", args=[used.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert used.shown_code in html and "STORE-07" in html and "RECEIPT-1" in html


def messages_of(page) -> list[str]:
    return [str(message) for message in page.context["messages"]]


def test_W5_each_voucher_the_desk_could_not_mark_used_is_named_in_its_refusal(
    client, login, make_member, catalogue, staff
):
    """An agent who marks several vouchers used reads which ones were refused: two
    expired 5 euro vouchers of two customers are not two identical lines."""
    # given: a valid voucher, and two 5 euro vouchers that expired, of two customers
    now, vouchers = timezone.now(), []
    for days_ago in [0, 100, 100]:
        customer = make_member(joined_at=now - timedelta(days=200))
        adjust_points(
            member=customer, points=500, reason="Welcome", by=staff, now=now - timedelta(200)
        )
        redeemed = now - timedelta(days=days_ago)
        vouchers.append(redeem(member=customer, reward=catalogue["5 euro voucher"], now=redeemed))
    valid, *expired = vouchers
    login("CX agent")

    # when: the agent marks all three used
    chosen = {"action": "use", ACTION_CHECKBOX_NAME: [v.pk for v in vouchers]}
    page = client.post(reverse(LIST), {**chosen, "token": uuid.uuid4()}, follow=True)

    # then: the valid one is used, and each refusal says which voucher and customer
    said = messages_of(page)
    for voucher in expired:
        until = f"{voucher.valid_until:%-d %b %Y}"
        assert (
            f"{voucher.shown_code} ({voucher.member.external_id}): This 5 euro voucher "
            f"expired: it was valid until the end of {until}." in said
        ), said
    assert f"Marked used: {valid.shown_code} ({valid.member.external_id})." in said


def test_W4_each_redemption_the_list_could_not_cancel_is_named_in_its_refusal(
    client, login, rich, four
):
    """An agent cancelling several redemptions reads which were refused and why."""
    login("CX agent")
    cancelled, valid = four["cancelled"], four["valid"]

    page = client.post(
        reverse(LIST),
        {
            "action": "cancel",
            ACTION_CHECKBOX_NAME: [cancelled.pk, valid.pk],
            "reason": "Customer asked",
        },
        follow=True,
    )

    said = messages_of(page)
    assert (
        f"{cancelled.shown_code} ({rich.external_id}): This redemption of Coffee voucher "
        "was already cancelled." in said
    ), said
    assert "1 redemption cancelled and refunded." in said


def test_W5_a_member_page_with_more_redemptions_than_it_lists_leads_to_all_of_them(
    client, login, rich, catalogue
):
    """A regular customer's older vouchers are not lost to the agent: the member page
    lists the latest 20 and says where all of them are."""
    # given: 21 coffee vouchers, the first still valid
    coffee = catalogue["Coffee voucher"]
    first = redeem(member=rich, reward=coffee, now=timezone.now() - timedelta(days=30))
    for _ in range(20):
        redeem(member=rich, reward=coffee)
    login("CX agent")

    # when
    page = client.get(reverse("admin:members_member_change", args=[rich.pk])).content.decode()

    # then: 20 rows, the first voucher not among them, and a link to all 21
    assert len(redemption_rows(page)) == 20
    assert first.shown_code not in page
    link = re.search(r'<a href="([^"]+)"[^>]*>All 21 redemptions</a>', page)
    assert link, page.split('id="redemptions"')[1][:2000]
    listed = client.get(html.unescape(link.group(1))).context["cl"]
    assert first in listed.result_list and len(listed.result_list) == 21


def test_W5_a_member_page_that_lists_every_redemption_says_nothing_more(client, login, four, rich):
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[rich.pk])).content.decode()
    assert len(redemption_rows(page)) == 4
    assert "redemptions</a>" not in page.split('id="redemptions"')[1].split("</section>")[0]


def test_W5_the_redemption_list_never_counts_every_voucher_by_status(client, login, four):
    """The status filter offers no "Show counts": at a million redemptions its four
    counts ran for more than a minute (the agent waited, a database connection was
    held), and long lists stop counting at 1,000 (rules.md)."""
    login("CX agent")

    offered = client.get(reverse(LIST)).content.decode()
    asked = client.get(reverse(LIST), {"_facets": "True"})

    assert "Show counts" not in offered
    assert not asked.context["cl"].add_facets
    assert "Valid (1)" not in asked.content.decode()


def test_W5_a_valid_code_is_whole_for_the_desk_and_masked_for_a_marketer(client, login, rich, four):
    valid = four["valid"]
    redemption_page = reverse("admin:rewards_redemption_change", args=[valid.pk])
    history_page = reverse("admin:rewards_redemption_history", args=[valid.pk])

    # a marketer reads the redemptions, their pages and history: the code masked
    login("Marketer")
    for url in (reverse(LIST), redemption_page, history_page):
        html = client.get(url).content.decode()
        assert valid.code not in html and valid.shown_code not in html, url
        assert f"\u2022\u2022\u2022\u2022-{valid.code[-4:]}" in html, url

    # nor can the address's filters spell it out, letter by letter
    guess = {"member__id__exact": rich.pk, "code__startswith": valid.code[:3]}
    assert client.get(reverse(LIST), guess).status_code == 400
    # the member page shows the last four characters, as the lists do
    member_page = client.get(reverse("admin:members_member_change", args=[rich.pk]))
    assert masked(valid.code) in member_page.content.decode()
    assert valid.shown_code not in member_page.content.decode()

    # an agent at the desk, who uses and cancels vouchers, reads it whole
    login("CX agent")
    assert valid.shown_code in client.get(reverse(LIST)).content.decode()
    assert valid.shown_code in client.get(redemption_page).content.decode()
    assert client.get(reverse(LIST), guess).status_code == 200
