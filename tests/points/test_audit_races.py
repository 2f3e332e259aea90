"""Audit of concurrent writers outside the API's purchases and redemptions, on
PostgreSQL with real connections: what staff see when two of them act at once."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, connections

from points.models import AdjustmentLimit, AdjustmentRequest, LedgerEntry
from points.services.goodwill import adjust_or_request, approve_request
from tests.conftest import postgres_only, summary

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), postgres_only]


def in_thread(work, done: threading.Event, results: list) -> threading.Thread:
    """Run work() on a connection of its own; what it returned or raised goes in results."""

    def run():
        try:
            results.append(work())
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            results.append(exc)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def user_in(django_user_model):
    def make(name, *groups):
        user = django_user_model.objects.create_user(name, is_staff=True)
        user.groups.add(*Group.objects.filter(name__in=groups))
        return user

    return make


def test_G3_approving_a_request_while_its_agent_gives_the_customer_more_gives_both(member, user_in):
    # given: maria (CX agent, 1,000 points at a time) asked for +3,000 for a customer
    AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX agent"), per_adjustment=1000, per_month=5000
    )
    maria, sam = user_in("maria", "CX agent"), user_in("sam", "CX supervisor")
    request = adjust_or_request(member=member, points=3000, reason="Flight cancelled", by=maria)
    assert isinstance(request, AdjustmentRequest)

    # and: while sam's approval writes the ledger line in maria's name, maria, still on
    # the phone with the customer, gives them +200 within her own limit
    given, maria_waits, maria_done = [], threading.Event(), threading.Event()
    threads = []

    def maria_gives():
        def signal_once_waiting(execute, sql, params, many, context):
            if "members_member" in sql and "FOR UPDATE" in sql:
                maria_waits.set()  # her own lock is taken: now for the member's
            return execute(sql, params, many, context)

        with connection.execute_wrapper(signal_once_waiting):
            return adjust_or_request(member=member, points=200, reason="Late parcel", by=maria)

    def maria_meanwhile(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "points_ledgerentry"') and not threads:
            threads.append(in_thread(maria_gives, maria_done, given))
            maria_waits.wait(10)
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(maria_meanwhile):
        approved = approve_request(request=request, by=sam)
    maria_done.wait(20)
    threads[0].join(20)

    # then: neither is stopped by the database; the customer has both
    assert approved.status == AdjustmentRequest.Status.APPROVED
    assert len(given) == 1 and isinstance(given[0], LedgerEntry), given
    assert summary(member)["available"] == 3200
    call_command("check_ledger")
