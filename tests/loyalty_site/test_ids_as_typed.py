"""The CX Manager reads a customer code, or a transaction's id, as the API does
(core.ids.canonical_id): "Café-1" typed or pasted with e and a combining accent (as a
Mac may send it) is the code kept composed, in every search box that looks for ids and
in every form field that takes a customer code (rules.md, Customer codes)."""

import unicodedata
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Member
from members.services import enroll_member
from points.models import AdjustmentRequest, PointDefinition
from rewards.models import Reward
from rewards.services import redeem
from tiers.models import Tier
from tiers.services import grant_status

pytestmark = pytest.mark.django_db

CODE = "Café-1"  # kept composed (NFC), as every door keeps it
TYPED = unicodedata.normalize("NFD", CODE)  # e and U+0301, as a Mac may send it
PURCHASE = "T-Café-9"


def enrol_cafe():
    return enroll_member(external_id=CODE, email="cafe@example.com")


@pytest.fixture
def cafe(tiers, no_campaigns, buy, staff):
    """A member with a row in each long list: a purchase, its ledger lines, a tier
    change and its message, a redemption, a point request, a status match, a webhook
    delivery."""
    member = enrol_cafe()
    buy(member, "1200", external_id=PURCHASE)  # Silver: history and a message
    redeem(member=member, reward=Reward.objects.create(name="Mug", points_cost=100))
    AdjustmentRequest.objects.create(
        member=member,
        points=2500,
        reason="Flight cancelled",
        definition=PointDefinition.objects.get(handle="manual-adjustment"),
        above="above the limit",
        requested_by=staff,
    )
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=member,
        tier=gold,
        until=timezone.localdate() + timedelta(days=365),
        reason="Match",
        by=staff,
    )
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/x", events=[])
    WebhookDelivery.objects.create(
        endpoint=endpoint, type="member.enrolled", member_id=member.pk, subject_id=member.pk
    )
    return member


LISTS = [
    "members_member",
    "points_transaction",
    "points_ledgerentry",
    "members_tierchange",
    "members_notification",
    "rewards_redemption",
    "points_adjustmentrequest",
    "tiers_statusgrant",
    "api_webhookdelivery",
]


@pytest.mark.parametrize("name", LISTS)
def test_a_customer_code_typed_decomposed_finds_the_member_in_every_list(
    client_admin, cafe, name, django_assert_max_num_queries
):
    # when: an agent on a Mac types the code in the list's search box
    with django_assert_max_num_queries(10):
        page = client_admin.get(reverse(f"admin:{name}_changelist"), {"q": TYPED})

    # then: the member's rows, as the code composed finds them
    assert page.status_code == 200
    composed = client_admin.get(reverse(f"admin:{name}_changelist"), {"q": CODE})
    found = list(page.context["cl"].result_list)
    assert found and found == list(composed.context["cl"].result_list)
    assert CODE in page.content.decode()  # its rows name it, as kept


def test_a_transaction_id_typed_decomposed_finds_the_transaction(client_admin, cafe):
    # when
    page = client_admin.get(
        reverse("admin:points_transaction_changelist"),
        {"q": unicodedata.normalize("NFD", PURCHASE)},
    )

    # then
    assert [t.external_id for t in page.context["cl"].result_list] == [PURCHASE]
    assert PURCHASE in page.content.decode()


def test_the_member_picker_finds_a_code_typed_decomposed(client_admin, cafe):
    # when: "Go to a member" on the dashboard
    picked = client_admin.get(
        reverse("admin:autocomplete"),
        {"app_label": "points", "model_name": "ledgerentry", "field_name": "member", "term": TYPED},
    )

    # then
    assert [r["id"] for r in picked.json()["results"]] == [str(cafe.pk)]


def test_a_name_kept_decomposed_is_still_found_as_typed(client_admin, make_member):
    # given: a name typed on a Mac into the contact form, kept as it came
    name = unicodedata.normalize("NFD", "Lucía")
    member = make_member("M-LUCIA")
    Member.objects.filter(pk=member.pk).update(first_name=name)

    # when: typed the same way, or composed (as on every other keyboard)
    as_typed = client_admin.get(reverse("admin:members_member_changelist"), {"q": name})
    composed = client_admin.get(reverse("admin:members_member_changelist"), {"q": "Lucía"})

    # then: found either way: names are not ids, and are kept as typed
    assert [m.pk for m in as_typed.context["cl"].result_list] == [member.pk]
    assert [m.pk for m in composed.context["cl"].result_list] == [member.pk]


def test_the_merge_form_takes_a_duplicate_code_typed_decomposed(client_admin, make_member):
    # given
    keep, old = make_member("M-KEEP"), enrol_cafe()
    form = {"merge-duplicate": TYPED, "merge-reason": "New e-mail", "merge-token": uuid.uuid4()}

    # when
    page = client_admin.post(reverse("admin:members_member_merge", args=[keep.pk]), form)

    # then: the confirmation names both accounts
    html = page.content.decode()
    assert "No member has the customer code" not in html
    assert f"Merge {CODE} into M-KEEP?" in html
    assert not Member.objects.get(pk=old.pk).is_merged  # nothing written yet


def test_enrolling_a_code_typed_decomposed_that_is_kept_composed_is_refused_on_the_form(
    client_admin, make_member
):
    # given: the app enrolled Café-1
    enrol_cafe()
    form = {
        "external_id": TYPED,
        "email": "desk@example.com",
        "first_name": "Nora",
        "joined_at_0": "2026-03-01",
        "joined_at_1": "10:00",
    }

    # when: an agent enrols the same code typed on a Mac
    page = client_admin.post(reverse("admin:members_member_add"), form)

    # then: the form again, saying why, with what the agent typed
    assert page.status_code == 200
    html = page.content.decode()
    assert "Member with this Customer code already exists." in html
    assert 'value="desk@example.com"' in html
    assert Member.objects.filter(external_id=CODE).count() == 1
    assert not Member.objects.filter(email="desk@example.com").exists()


def test_a_referrer_code_typed_decomposed_is_the_referrer(client_admin, make_member):
    # given
    referrer = enrol_cafe()
    form = {
        "external_id": "M-NEW",
        "email": "new@example.com",
        "joined_at_0": "2026-03-01",
        "joined_at_1": "10:00",
        "referred_by_code": TYPED,
    }

    # when
    client_admin.post(reverse("admin:members_member_add"), form)

    # then
    assert Member.objects.get(external_id="M-NEW").referred_by == referrer
