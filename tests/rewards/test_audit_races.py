"""Audit of concurrent writers outside the API's redemptions, on PostgreSQL with real
connections: what staff see when a cancellation and a merge act at once."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections

from members.models import Member
from members.services import merge_members
from points.services import adjust_points
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption, redeem
from tests.conftest import postgres_only, summary

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), postgres_only]


def test_M5_M7_cancelling_a_merged_accounts_redemption_while_its_survivor_is_merged_again(
    make_member, staff
):
    # given: M-X redeemed a mug, then was merged into M-S (its redemption stays there);
    # M-S turns out to be a duplicate of M-T too
    t, s, x = make_member("M-T"), make_member("M-S"), make_member("M-X")
    adjust_points(member=x, points=500, reason="Welcome", by=staff)
    mug = redeem(member=x, reward=Reward.objects.create(name="Mug", points_cost=100), by=staff)
    merge_members(survivor=s, duplicate=x, by=staff, reason="New e-mail address")

    # and: one agent cancels the mug; as its refund goes for the account kept, another
    # agent's merge of M-S into M-T takes both accounts
    merged, merge_holds, merge_done = [], threading.Event(), threading.Event()

    def merge_again():
        def signal_once_locked(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if "members_member" in sql and "FOR UPDATE" in sql:
                merge_holds.set()
            return result

        try:
            with connection.execute_wrapper(signal_once_locked):
                merged.append(merge_members(survivor=t, duplicate=s, by=staff, reason="Card"))
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            merged.append(exc)
        finally:
            connections.close_all()
            merge_done.set()

    threads = []

    def merge_meanwhile(execute, sql, params, many, context):
        locks_survivor = "members_member" in sql and "FOR UPDATE" in sql and s.pk in params
        if locks_survivor and not threads:
            threads.append(threading.Thread(target=merge_again))
            threads[0].start()
            merge_holds.wait(10)
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(merge_meanwhile):
        cancel_redemption(redemption=mug, by=staff, reason="Never arrived")
    merge_done.wait(20)
    threads[0].join(20)

    # then: neither agent meets a database error; the refund is on the account kept
    assert merged == [Member.objects.get(pk=t.pk)], merged
    assert Redemption.objects.get(pk=mug.pk).status == Redemption.Status.CANCELLED
    assert [summary(m)["available"] for m in (t, s, x)] == [500, 0, 0]
    call_command("check_ledger")
