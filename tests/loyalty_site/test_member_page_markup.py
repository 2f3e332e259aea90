"""The member page as assistive technology reads it: each form field's help is the
element its aria-describedby names, and no id is on two elements (the page holds
several forms, each with its one-time token)."""

import re
from collections import Counter

import pytest

from tests.loyalty_site.conftest import page

pytestmark = pytest.mark.django_db


def test_every_help_text_is_found_and_every_id_is_unique(admin_client, member, catalogue):
    html = page(admin_client, member)

    ids = Counter(re.findall(r'\sid="([^"]+)"', html))
    assert [name for name, times in ids.items() if times > 1] == []
    described = set(re.findall(r'aria-describedby="([^"]+)"', html))
    assert described, "the page's forms describe no field"
    assert sorted(described - ids.keys()) == []
    assert 'id="id_points_helptext">Negative to remove points.' in html


def test_a_refused_form_opens_on_its_first_wrong_field_and_says_error_in_the_title(
    client, login, member
):
    from tests.loyalty_site.cx_pages import assign

    login("CX agent")

    # when: the agent removes more points than the member has
    sent_back = assign(client, member, -99999).content.decode()

    # then: the tab says it, and the browser opens the page on the points field
    assert "<title>Error: " in sent_back
    assert re.search(r'<input[^>]*name="points"[^>]*autofocus', sent_back)
    assert "autofocus" not in page(client, member)  # not on a page with nothing wrong


def test_each_reason_kept_for_good_warns_staff_off_personal_data(admin_client, member):
    """Found by an audit of erasure: reasons named the customer, a phone number, an
    illness, and the ledger keeps them after the customer is erased (P7)."""
    html = page(admin_client, member)

    warning = "Kept for good, even if the customer is later erased: write what happened, not"
    for form in ["id_reason", "id_match-reason", "id_merge-reason"]:
        assert re.search(rf'id="{form}_helptext">[^<]*{warning}', html), form
    # a freeze's reason goes with the customer's personal data: no warning
    assert (
        'id="id_freeze-reason"' in html
        and f"{warning}" not in html.split("id_freeze-reason")[1][:400]
    )
