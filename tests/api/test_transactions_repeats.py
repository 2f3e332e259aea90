"""Transactions sent again through the API (P8): an exact repeat answers 200 with the
same body, the same id with other content 409, and nothing is recorded twice."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import FirstAnswer
from tests.api.conftest import assert_problem, client_for, new_id, post
from tests.conftest import ledger_state, postgres_only, run_together, summary

pytestmark = pytest.mark.django_db


def test_P8_an_exact_repeat_answers_200_with_the_same_body_and_records_nothing(
    api, member, purchase
):
    body = purchase(member)
    first = post(api, "/api/v1/transactions", body)
    state = ledger_state()

    again = post(api, "/api/v1/transactions", body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ledger_state() == state


def test_P8_a_repeat_after_the_member_changed_answers_the_first_body(api, member, purchase):
    # given a purchase, then another that changes the member's balance
    body = purchase(member)
    first = post(api, "/api/v1/transactions", body)
    post(api, "/api/v1/transactions", purchase(member))

    # when the first is sent again
    again = post(api, "/api/v1/transactions", body)

    # then the answer is the first one, the summary as that purchase left the member
    assert again.status_code == 200
    assert again.json() == first.json()
    assert summary(member)["available"] > first.json()["summary"]["available"]


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_P8_a_repeat_answered_while_the_first_answer_was_on_its_way_does_not_replace_it(
    till, member, purchase, monkeypatch
):
    """Found by a review: the repeat's answer (the figures as they stood then) was kept,
    and every later repeat gave it instead of the first answer."""
    # given: a purchase written, its answer not kept yet (a slow moment)
    body = purchase(member)
    keep, on_its_way, go_on = FirstAnswer.keep, threading.Event(), threading.Event()

    def slow(external_id, data, **kwargs):
        if external_id == body["external_id"] and not on_its_way.is_set():  # the first's
            on_its_way.set()
            go_on.wait(10)
        return keep(external_id, data, **kwargs)

    monkeypatch.setattr(FirstAnswer, "keep", slow)

    def work(i):
        if i == 0:
            return post(client_for(till.secret), "/api/v1/transactions", body)
        # when: meanwhile another purchase, and the till sends the first again
        assert on_its_way.wait(10)
        try:
            post(client_for(till.secret), "/api/v1/transactions", purchase(member))
            return post(client_for(till.secret), "/api/v1/transactions", body)
        finally:
            go_on.set()

    first, early = run_together(2, work)

    # then: the early repeat gave the figures as they stood; every later repeat gives
    # the first answer
    assert (first.status_code, early.status_code) == (201, 200)
    later = post(client_for(till.secret), "/api/v1/transactions", body)
    assert later.status_code == 200 and later.json() == first.json()


def test_P8_first_answers_are_kept_for_the_repeat_window_then_repeats_show_the_figures_now(
    api, member, purchase, settings
):
    # given: two purchases recorded, the first 31 days ago by the answers' clock
    from api.models import FirstAnswer
    from api.tasks import prune_first_answers_task

    settings.API_REPEAT_ANSWER_DAYS = 30
    old, recent = purchase(member), purchase(member)
    first = post(api, "/api/v1/transactions", old)
    post(api, "/api/v1/transactions", recent)
    FirstAnswer.objects.filter(external_id=old["external_id"]).update(
        created_at=timezone.now() - timedelta(days=31)
    )

    # when: the daily job runs (twice: the second changes nothing)
    assert prune_first_answers_task() == 1
    assert prune_first_answers_task() == 0

    # then: the recent answer is kept; a repeat of the old one answers 200 with the
    # member as they are now, and records nothing
    assert list(FirstAnswer.objects.values_list("external_id", flat=True)) == [
        recent["external_id"]
    ]
    state = ledger_state()
    again = post(api, "/api/v1/transactions", old)
    assert again.status_code == 200
    assert again.json()["points"] == first.json()["points"]
    assert again.json()["summary"]["available"] == summary(member, now=timezone.now())["available"]
    assert again.json()["summary"] != first.json()["summary"]
    assert ledger_state() == state


def test_P8_the_same_instant_written_with_another_offset_is_the_same_content(api, member, purchase):
    body = purchase(member, occurred_at="2026-11-01T10:00:00+01:00")
    first = post(api, "/api/v1/transactions", body)

    again = post(api, "/api/v1/transactions", {**body, "occurred_at": "2026-11-01T09:00:00Z"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


@pytest.mark.parametrize(
    "other",
    [{"amount": "99.00"}, {"occurred_at": "2026-11-01T10:00:01+01:00"}, {"member": "OTHER"}],
    ids=["amount", "time", "member"],
)
def test_P8_the_same_id_with_other_content_is_a_409_conflict_and_records_nothing(
    api, member, make_member, purchase, other
):
    body = purchase(member, occurred_at="2026-11-01T10:00:00+01:00")
    post(api, "/api/v1/transactions", body)
    if other.get("member"):
        other = {"member": make_member().external_id}  # before the state: enrolling is no write
    state = ledger_state()

    response = post(api, "/api/v1/transactions", {**body, **other})

    problem = assert_problem(response, 409, fields={"external_id"})
    assert body["external_id"] in problem["detail"]
    assert ledger_state() == state


@pytest.mark.parametrize("reused", ["the return's id", "the purchase's id"])
def test_P8_a_return_under_an_id_used_before_naming_another_purchase_is_a_409(
    api, member, purchase, reused
):
    # given a purchase and a return of part of it
    bought = purchase(member)
    assert post(api, "/api/v1/transactions", bought).status_code == 201
    returned = bought | {
        "external_id": new_id("R"),
        "kind": "return",
        "amount": "40.00",
        "original_external_id": bought["external_id"],
    }
    assert post(api, "/api/v1/transactions", returned).status_code == 201
    state = ledger_state()

    # when: an id used before, as a return of a purchase that does not exist
    used = returned["external_id"] if reused == "the return's id" else bought["external_id"]
    response = post(
        api,
        "/api/v1/transactions",
        returned | {"external_id": used, "original_external_id": "NO-SUCH-PURCHASE"},
    )

    # then: the conflict of ids, not the missing purchase
    assert_problem(response, 409, fields={"external_id"})
    assert ledger_state() == state
