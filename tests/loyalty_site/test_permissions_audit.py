"""What an audit of every admin URL and action, role by role, found: a voucher code found
its member for roles that may not see codes, and noted in the member's history; pages
that did their work (the member's figures, a campaign's reach) before refusing; and
agents, whom the rules ask to correct a member's address, could not."""

import pytest
from django.urls import reverse

from members.models import Member
from rewards.services import redeem
from tests.loyalty_site.test_audit_member_desk import contact_form, member_page
from tests.points.test_campaign_admin import campaign

pytestmark = pytest.mark.django_db


def found_by(client, term: str) -> list[str]:
    """The customer codes the member list and the member picker find for a term."""
    listed = client.get(reverse("admin:members_member_changelist"), {"q": term})
    picked = client.get(
        "/admin/autocomplete/",
        {"app_label": "points", "model_name": "ledgerentry", "field_name": "member", "term": term},
    )
    codes = [m.external_id for m in listed.context["cl"].result_list]
    return codes + [result["text"].split()[0] for result in picked.json()["results"]]


@pytest.mark.parametrize(("role", "finds"), [("CX agent", True), ("Operations", False)])
def test_a_voucher_code_finds_its_member_only_for_whoever_may_see_codes(
    client, login, rich, catalogue, role, finds
):
    voucher = redeem(member=rich, reward=catalogue["5 euro voucher"])
    login(role)

    codes = found_by(client, voucher.code)

    assert (rich.external_id in codes) is finds, codes


def test_a_member_page_refused_reads_none_of_the_member_s_figures(
    client, login, member, django_assert_max_num_queries
):
    login(None)  # staff in no group

    with django_assert_max_num_queries(8):  # the session and the user, not the page's 40
        response = client.get(member_page(member))

    assert response.status_code == 403


def test_a_campaign_page_refused_counts_no_members(
    client, login, tiers, django_assert_max_num_queries
):
    running = campaign("Double points weekend")
    login("Operations")

    with django_assert_max_num_queries(8):
        response = client.get(reverse("admin:points_campaign_change", args=[running.pk]))

    assert response.status_code == 403


@pytest.mark.parametrize("role", ["CX agent", "CX supervisor"])
def test_an_agent_corrects_a_member_s_address_but_enrols_nobody_by_hand(
    client, login, member, role
):
    """rules.md: once the member's address is corrected, an agent sends the refused
    messages again. Enrolling by hand stays with "Can add member" (which also imports
    members files and their opening balances)."""
    login(role)

    saved = client.post(member_page(member), contact_form(member, email="ana.new@example.com"))

    assert saved.status_code == 302
    assert Member.objects.get(pk=member.pk).email == "ana.new@example.com"
    assert client.get(reverse("admin:members_member_add")).status_code == 403
