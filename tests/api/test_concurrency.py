"""Idempotency and W3 under concurrent requests, each thread a till of its own with its
own connection, on PostgreSQL (SQLite runs one writer at a time)."""

import json
import threading
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from api.views import vouchers as vouchers_view
from members.models import Member
from points.models import LedgerEntry, Transaction
from points.services import adjust_points
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption, redeem
from tests.api.conftest import client_for, new_id, post, recently
from tests.conftest import postgres_only, run_together, summary

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

THREADS = 20


def answers(results):
    """(status, body) of each thread's response; a thread that raised fails the test."""
    assert not [r for r in results if isinstance(r, Exception)], results
    return [(r.status_code, json.loads(r.content)) for r in results]


def test_P8_twenty_concurrent_identical_purchases_record_one_transaction(till, member):
    # given
    body = {
        "external_id": new_id("P"),
        "member": member.external_id,
        "kind": "purchase",
        "amount": "250.00",
        "occurred_at": recently(),
    }

    # when
    results = run_together(
        THREADS, lambda i: post(client_for(till.secret), "/api/v1/transactions", body)
    )

    # then
    got = answers(results)
    assert sorted(status for status, _ in got) == [200] * (THREADS - 1) + [201]
    assert all(answer == got[0][1] for _, answer in got), got
    assert got[0][1]["points"] == 250
    assert Transaction.objects.filter(external_id=body["external_id"]).count() == 1
    assert LedgerEntry.objects.filter(member=member).count() == 1
    assert summary(member, now=timezone.now())["available"] == 250
    call_command("check_ledger")


def test_W3_twenty_concurrent_redemptions_of_a_balance_that_covers_one(till, member, staff):
    # given
    adjust_points(member=member, points=500, reason="Welcome", by=staff)
    voucher = Reward.objects.create(name="5 euro voucher", points_cost=400)

    # when
    results = run_together(
        THREADS,
        lambda i: post(
            client_for(till.secret),
            "/api/v1/redemptions",
            {"external_id": f"RD-RACE-{i}", "member": member.external_id, "reward": voucher.pk},
        ),
    )

    # then
    got = answers(results)
    assert sorted(status for status, _ in got) == [201] + [422] * (THREADS - 1), got
    assert {answer["detail"] for status, answer in got if status == 422} == {
        "5 euro voucher: Needs 300 more points."
    }
    assert Redemption.objects.count() == 1
    assert summary(member, now=timezone.now())["available"] == 100
    assert Member.objects.get(pk=member.pk).points_balance == 100
    assert LogEntry.objects.filter(user_id=till.user_id).count() == 1
    call_command("check_ledger")


def test_P8_twenty_concurrent_identical_redemptions_redeem_once(till, member, staff):
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = Reward.objects.create(name="Coffee voucher", points_cost=150)
    body = {"external_id": new_id("RD"), "member": member.external_id, "reward": voucher.pk}

    results = run_together(
        THREADS, lambda i: post(client_for(till.secret), "/api/v1/redemptions", body)
    )

    got = answers(results)
    assert sorted(status for status, _ in got) == [200] * (THREADS - 1) + [201], got
    assert all(answer == got[0][1] for _, answer in got)
    assert Redemption.objects.count() == 1
    assert summary(member, now=timezone.now())["available"] == 850
    call_command("check_ledger")


def test_W4_concurrent_cancellations_refund_once_and_all_answer_the_same(till, member, staff):
    # given
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = Reward.objects.create(name="Coffee voucher", points_cost=150, stock=10)
    made = post(
        client_for(till.secret),
        "/api/v1/redemptions",
        {"external_id": new_id("RD"), "member": member.external_id, "reward": voucher.pk},
    ).json()

    # when
    results = run_together(
        10, lambda i: client_for(till.secret).post(f"/api/v1/redemptions/{made['id']}/cancel")
    )

    # then
    got = answers(results)
    assert [status for status, _ in got] == [200] * 10, got
    assert all(answer == got[0][1] for _, answer in got)
    assert got[0][1]["status"] == "cancelled"
    assert LedgerEntry.objects.filter(member=member, kind="refund").count() == 1
    assert Reward.objects.get(pk=voucher.pk).stock == 10
    assert summary(member, now=timezone.now())["available"] == 1000
    call_command("check_ledger")


def test_twenty_concurrent_identical_enrolments_enrol_once(till, tiers):
    body = {"external_id": "M-RACE", "email": "race@example.com", "first_name": "Ana"}

    results = run_together(
        THREADS, lambda i: post(client_for(till.secret), "/api/v1/members", body)
    )

    got = answers(results)
    assert sorted(status for status, _ in got) == [200] * (THREADS - 1) + [201], got
    assert all(answer == got[0][1] for _, answer in got)
    assert Member.objects.filter(external_id="M-RACE").count() == 1
    assert LogEntry.objects.filter(user_id=till.user_id).count() == 1


def test_W5_twenty_concurrent_uses_of_one_code_from_two_tills_give_one_success(
    till, shop, member, staff
):
    # given: a voucher, and two tills each sending their use ten times at once (retries)
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = redeem(member=member, reward=Reward.objects.create(name="5 euro", points_cost=500))
    tills = [(till.secret, "TILL-RECEIPT-1"), (shop.secret, "SHOP-ORDER-1")]

    # when
    results = run_together(
        THREADS,
        lambda i: post(
            client_for(tills[i % 2][0]),
            f"/api/v1/vouchers/{voucher.code}/use",
            {"external_id": tills[i % 2][1]},
        ),
    )

    # then: the winner's ten get the same answer (201 once, 200 after), the other's ten
    # are refused with the day it was used
    got = answers(results)
    used = Redemption.objects.get(pk=voucher.pk)
    winner = [answer for i, answer in enumerate(got) if tills[i % 2][1] == used.used_external_id]
    loser = [answer for i, answer in enumerate(got) if tills[i % 2][1] != used.used_external_id]
    assert sorted(status for status, _ in winner) == [200] * 9 + [201], got
    assert all(body == winner[0][1] for _, body in winner)
    assert winner[0][1]["status"] == "used"
    assert [status for status, _ in loser] == [422] * 10, got
    assert all("was already used on" in body["detail"] for _, body in loser)
    assert LogEntry.objects.filter(change_message__startswith="Used the").count() == 1


def test_W4_W5_an_agent_cancelling_while_a_till_uses_the_voucher_is_refused(
    till, member, staff, monkeypatch
):
    # given: a till's use that holds the voucher a while (its history row is slow)
    adjust_points(member=member, points=1000, reason="Welcome", by=staff)
    voucher = redeem(member=member, reward=Reward.objects.create(name="5 euro", points_cost=500))
    log, holding = vouchers_view.log_api_change, threading.Event()

    def slow_log(*args, **kwargs):
        row = log(*args, **kwargs)
        holding.set()
        time.sleep(0.4)
        return row

    monkeypatch.setattr(vouchers_view, "log_api_change", slow_log)

    def work(i):
        if i == 0:
            return post(
                client_for(till.secret),
                f"/api/v1/vouchers/{voucher.code}/use",
                {"external_id": "RECEIPT-1"},
            )
        holding.wait(timeout=30)  # the use holds the voucher (its transaction is open)
        return cancel_redemption(redemption=voucher, by=staff, reason="Race")

    # when
    results = run_together(2, work)

    # then: the use went through, the cancellation waited and was refused
    assert results[0].status_code == 201, results[0].content
    assert isinstance(results[1], ValidationError), results[1]
    assert "a used voucher cannot be cancelled" in results[1].messages[0]
    assert not LedgerEntry.objects.filter(member=member, kind="refund").exists()
    assert summary(member, now=timezone.now())["available"] == 500
    call_command("check_ledger")
