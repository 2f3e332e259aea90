"""Enrolment through the API with a birth date and a referrer (DESIGN.md, "Earning
beyond the purchase"), and the programme's own awards refused to callers."""

from datetime import date

import pytest

from loyalty_site.demo import load_welcome
from members.models import Member
from members.services import enroll_member, erase_member, merge_members
from points.models import LedgerEntry
from tests.api.conftest import assert_problem, post, recently

pytestmark = pytest.mark.django_db


def enrol(code, **fields):
    return enroll_member(external_id=code, email=f"{code.lower()}@example.com", **fields)


def test_api_enrols_with_a_birth_date_and_a_referrer_and_a_repeat_is_the_same(api, tiers):
    enrol("M-REF")
    body = {
        "external_id": "M-API-9",
        "email": "a@example.com",
        "birth_date": "1990-03-05",
        "referred_by": "M-REF",
    }
    first = post(api, "/api/v1/members", body)
    again = post(api, "/api/v1/members", body)
    other = post(api, "/api/v1/members", {**body, "referred_by": ""})
    assert (first.status_code, again.status_code) == (201, 200)
    assert_problem(other, 409, fields=["external_id"])
    member = Member.objects.get(external_id="M-API-9")
    assert (member.birth_date, member.referred_by.external_id) == (date(1990, 3, 5), "M-REF")


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"referred_by": "M-NOBODY"}, 404, "referred_by"),  # unknown, as any member named
        ({"referred_by": "M-API-8"}, 422, "referred_by"),
        ({"birth_date": "2990-01-01"}, 400, "birth_date"),
        ({"birth_date": "1899-12-31"}, 400, "birth_date"),  # a year typed wrong (was 422)
        ({"birth_date": "1990-02-30"}, 400, "birth_date"),
        ({"birth_date": 19900101}, 400, "birth_date"),
    ],
)
def test_api_refuses_a_bad_referrer_or_birth_date_and_enrols_nobody(
    api, tiers, fields, status, field
):
    body = {"external_id": "M-API-8", "email": "a@example.com", **fields}
    assert_problem(post(api, "/api/v1/members", body), status, fields=[field])
    assert not Member.objects.filter(external_id="M-API-8").exists()


def test_api_refuses_an_action_the_programme_gives_itself(api, make_member):
    member = make_member("M-ACT")
    response = post(
        api,
        "/api/v1/actions",
        {
            "external_id": "A-1",
            "member": "M-ACT",
            "definition": "refer-a-friend",
            "occurred_at": recently(),
        },
    )
    assert_problem(response, 422)
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_the_201_of_an_enrolment_shows_its_welcome_points_as_get_and_a_repeat_do(api, tiers):
    # given: the demo's 50 welcome points on enrolment
    load_welcome()
    body = {"external_id": "W-1", "email": "w1@example.com"}

    # when
    first = post(api, "/api/v1/members", body)
    shown = api.get("/api/v1/members/W-1")
    again = post(api, "/api/v1/members", body)

    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["available"] == 50
    assert first.json() == shown.json() == again.json()


def test_an_exact_repeat_of_an_enrolment_naming_a_merged_referrer_is_200(api, tiers, staff):
    # given: M-OLD merged into M-KEEP
    keep, old = enrol("M-KEEP"), enrol("M-OLD")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Duplicate")
    body = {"external_id": "M-NEW", "email": "new@example.com", "referred_by": "M-OLD"}

    # when
    first = post(api, "/api/v1/members", body)
    again = post(api, "/api/v1/members", body)
    other = post(api, "/api/v1/members", body | {"referred_by": ""})

    # then: referred by the account kept; the same again is 200, without a referrer 409
    assert (first.status_code, again.status_code) == (201, 200), again.json()
    assert Member.objects.get(external_id="M-NEW").referred_by == keep
    assert_problem(other, 409, fields={"external_id"})


def test_an_exact_repeat_of_an_enrolment_whose_referrer_was_erased_since_is_200(api, tiers, staff):
    # given: M-NEW enrolled, referred by M-REF, who is then erased
    enrol("M-REF")
    body = {"external_id": "M-NEW", "email": "new@example.com", "referred_by": "M-REF"}
    first = post(api, "/api/v1/members", body)
    erase_member(member=Member.objects.get(external_id="M-REF"), by=staff)

    # when the till sends the enrolment again
    again = post(api, "/api/v1/members", body)
    other = post(api, "/api/v1/members", body | {"email": "other@example.com"})

    # then: the same enrolment, still; other data is still a conflict
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
