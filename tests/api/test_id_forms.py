"""Ids written in two Unicode forms (rules.md, Customer codes: "Café-1" with a composed
é, U+00E9, or with e and a combining accent, U+0065 U+0301, as a Mac or a web form may
send it) look the same to everyone: they are one id, for the API and for files alike.
Read in the composed form (NFC) wherever they come in; never a 500."""

import importlib
import io
import json
import unicodedata
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from members.models import Member
from points.grant_rows import read_grants
from points.member_rows import read_members
from points.models import Transaction
from points.resources import read_transactions
from points.services import import_grants, import_members, import_transactions
from rewards.models import Redemption, Reward
from tests.api.conftest import assert_problem, client_for, post, recently

pytestmark = pytest.mark.django_db


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


CODE = "Café-1"
assert nfc(CODE) != nfd(CODE)


@pytest.fixture
def api(till, tiers, no_campaigns):
    return client_for(till.secret)


@pytest.fixture
def enrolled(api):
    """Café-1 enrolled by the app, its é composed."""
    answer = post(api, "/api/v1/members", {"external_id": nfc(CODE), "email": "cafe@example.com"})
    assert answer.status_code == 201
    return answer.json()


def purchase(code, external_id, amount="10.00", occurred_at=None) -> dict:
    return {
        "external_id": external_id,
        "member": code,
        "kind": "purchase",
        "amount": amount,
        "occurred_at": occurred_at or recently(),
    }


def test_a_customer_code_sent_decomposed_names_the_member_enrolled_composed(api, enrolled):
    # when: the web shop, on a Mac, sends the same code decomposed
    found = api.get(f"/api/v1/members/{quote(nfd(CODE))}")
    again = post(api, "/api/v1/members", {"external_id": nfd(CODE), "email": "cafe@example.com"})

    # then: one member, found and enrolled once
    assert found.status_code == 200 and found.json()["external_id"] == nfc(CODE)
    assert again.status_code == 200 and again.json()["external_id"] == nfc(CODE)
    assert list(Member.objects.values_list("external_id", flat=True)) == [nfc(CODE)]


def test_a_member_enrolled_decomposed_is_stored_composed(api, tiers):
    # when
    answer = post(api, "/api/v1/members", {"external_id": nfd(CODE), "email": "cafe@example.com"})

    # then
    assert answer.status_code == 201 and answer.json()["external_id"] == nfc(CODE)
    assert api.get(f"/api/v1/members/{quote(nfc(CODE))}").status_code == 200


def test_P8_a_purchase_sent_again_with_its_id_decomposed_is_the_same_purchase(api, enrolled):
    # given: a purchase recorded with its id and the member's code composed
    body = purchase(nfc(CODE), nfc("Tiquet-Nº-1-é"))
    first = post(api, "/api/v1/transactions", body)
    assert first.status_code == 201

    # when: the till sends it again after a time-out, both decomposed
    again = post(
        api,
        "/api/v1/transactions",
        {**body, "external_id": nfd(body["external_id"]), "member": nfd(CODE)},
    )

    # then: the same answer, and the points once
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Transaction.objects.count() == 1
    assert api.get(f"/api/v1/members/{quote(CODE)}").json()["lifetime"] == 10


def test_a_return_naming_its_purchase_decomposed_finds_it(api, enrolled):
    # given
    bought = purchase(nfc(CODE), nfc("Tiquet-é-2"), amount="100.00")
    assert post(api, "/api/v1/transactions", bought).status_code == 201

    # when
    returned = post(
        api,
        "/api/v1/transactions",
        {
            **bought,
            "external_id": "R-1",
            "kind": "return",
            "amount": "50.00",
            "original_external_id": nfd(bought["external_id"]),
            "occurred_at": recently(0),
        },
    )

    # then
    assert returned.status_code == 201, returned.json()
    assert returned.json()["points"] == -50
    assert returned.json()["original_external_id"] == nfc(bought["external_id"])


def test_a_file_answers_as_the_api_does_for_an_id_in_the_other_form(api, enrolled):
    # given: a purchase recorded by the till, composed
    body = purchase(nfc(CODE), nfc("Tiquet-é-3"), occurred_at="2026-03-01T10:00:00+01:00")
    assert post(api, "/api/v1/transactions", body).status_code == 201

    # when: the night's file repeats it, and adds another, both decomposed
    csv = (
        "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
        f"{nfd(body['external_id'])},{nfd(CODE)},purchase,10.00,2026-03-01T10:00:00+01:00,pos,STORE-12,\n"
        f"{nfd('Tiquet-é-4')},{nfd(CODE)},purchase,20.00,2026-03-02T10:00:00+01:00,pos,STORE-12,\n"
    )
    rows, errors = read_transactions(io.BytesIO(csv.encode()))
    report = import_transactions(rows, errors=errors)

    # then: the first is skipped as recorded (P8), the second names the same member
    assert (report.new, report.skipped, report.errors) == (1, 1, [])
    assert sorted(Transaction.objects.values_list("external_id", flat=True)) == [
        nfc("Tiquet-é-3"),
        nfc("Tiquet-é-4"),
    ]
    assert set(Transaction.objects.values_list("member__external_id", flat=True)) == {nfc(CODE)}


def test_the_members_and_grants_files_name_the_member_whatever_the_form(api, enrolled, staff):
    # given: the CRM's export of Café-1, decomposed, and a grant to it
    members = "external_id,email,first_name\n" + f"{nfd(CODE)},cafe@example.com,Ana\n"
    grants = "external_id,member,points,reason\n" + f"{nfd('G-é-1')},{nfd(CODE)},25,Goodwill\n"

    # when
    rows, errors = read_members(io.BytesIO(members.encode()))
    updated = import_members(rows, errors=errors)
    rows, errors = read_grants(io.BytesIO(grants.encode()))
    granted = import_grants(rows, errors=errors, by=staff)
    rows, errors = read_grants(io.BytesIO(grants.encode()))
    again = import_grants(rows, errors=errors, by=staff)

    # then: the member enrolled through the API, updated and granted once
    assert (updated.new, updated.updated, updated.errors) == (0, 1, [])
    assert (granted.new, granted.errors, again.new, again.skipped) == (1, [], 0, 1)
    assert list(Member.objects.values_list("external_id", "first_name")) == [(nfc(CODE), "Ana")]


def test_a_redemption_and_a_voucher_use_sent_again_decomposed_are_the_same(api, enrolled, staff):
    # given: points to spend, a coffee redeemed and its voucher used, ids composed
    from points.services import adjust_points

    adjust_points(member=Member.objects.get(), points=500, reason="Welcome", by=staff)
    coffee = Reward.objects.create(name="Coffee", points_cost=100)
    redemption = {"external_id": nfc("Pedido-é-1"), "member": nfc(CODE), "reward": coffee.pk}
    first = post(api, "/api/v1/redemptions", redemption)
    code = first.json()["code"]
    use = {"external_id": nfc("Tiquet-é-5")}
    used = post(api, f"/api/v1/vouchers/{code}/use", use)
    assert (first.status_code, used.status_code) == (201, 201)

    # when: both sent again, decomposed
    again = post(
        api,
        "/api/v1/redemptions",
        {**redemption, "external_id": nfd(redemption["external_id"]), "member": nfd(CODE)},
    )
    used_again = post(api, f"/api/v1/vouchers/{code}/use", {"external_id": nfd(use["external_id"])})

    # then: the same redemption, used once
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert used_again.status_code == 200
    assert Redemption.objects.count() == 1


# A code whose composed form is longer than it was sent (a few characters compose to
# two: U+0958 DEVANAGARI LETTER QA is U+0915 U+093C in NFC) is measured as it is kept.
LONG_WHEN_COMPOSED = "\u0958" * 64
assert len(nfc(LONG_WHEN_COMPOSED)) == 128


def test_an_id_longer_than_allowed_once_composed_is_a_400_not_a_500(api, enrolled):
    # when
    enrolment = post(
        api, "/api/v1/members", {"external_id": LONG_WHEN_COMPOSED, "email": "q@ex.com"}
    )
    looked_up = api.get(f"/api/v1/members/{quote(LONG_WHEN_COMPOSED)}")
    bought = post(api, "/api/v1/transactions", purchase(CODE, "\u0958" * 100))

    # then
    assert_problem(enrolment, 400, fields=["external_id"])
    assert_problem(looked_up, 404)
    assert_problem(bought, 400, fields=["external_id"])
    assert Member.objects.count() == 1 and not Transaction.objects.exists()


def test_answers_name_ids_as_they_are_kept(api, tiers):
    # when
    answer = post(api, "/api/v1/members", {"external_id": nfd(CODE), "email": "cafe@example.com"})

    # then: the composed form, as JSON escapes (rules.md, the API)
    assert b"Caf\\u00e9-1" in answer.content
    assert json.loads(answer.content)["external_id"] == nfc(CODE)


def test_the_upgrade_composes_the_codes_written_before_unless_another_member_has_it(
    api, tiers, capsys
):
    # given: codes kept before this rule: one decomposed, one decomposed whose composed
    # form another member has (the same customer, enrolled twice), and ASCII ones
    from django.apps import apps
    from django.db import connection

    from members.services import enroll_member

    for code in ["Bodega-ñ", "Café-1", "M-00042", "Café-2"]:
        member = enroll_member(external_id=code, email="x@example.com")
        Member.objects.filter(pk=member.pk).update(external_id=nfd(code))  # as kept then
    twice = member
    enroll_member(external_id="Café-2", email="y@example.com")  # now the composed one
    upgrade = importlib.import_module("members.migrations.0024_customer_codes_composed")

    # when
    upgrade.compose(apps, SimpleNamespace(connection=connection))

    # then: found as tills send them; the pair is left for an agent to merge, and named
    assert sorted(Member.objects.values_list("external_id", flat=True)) == sorted(
        ["Bodega-ñ", "Café-1", "M-00042", "Café-2", nfd("Café-2")]
    )
    assert api.get(f"/api/v1/members/{quote(nfd('Bodega-ñ'))}").status_code == 200
    assert f"member id {twice.pk}" in capsys.readouterr().out
