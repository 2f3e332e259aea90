"""Referrals under concurrency (PostgreSQL): an import and a till's first purchase of a
referred friend, or two imports over a referral chain, lock members in one order (id
order, the referrer before its friend), so the later one waits instead of deadlocking."""

import io
import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Member
from members.services import enroll_member
from points.models import LedgerEntry, Transaction
from points.resources import read_transactions
from points.services import earning, import_transactions, importing, posting, record_purchase
from tests.api.conftest import client_for, post, recently, till  # noqa: F401 (a fixture)
from tests.conftest import postgres_only, run_together
from tests.members.merging import merge

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


def run(text):
    rows, errors = read_transactions(io.BytesIO((HEADER + text).encode()))
    return import_transactions(rows, errors=errors)


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_import_and_a_tills_first_purchase_of_a_referred_friend_do_not_deadlock(
    tiers,
    no_campaigns,
    till,  # noqa: F811
    monkeypatch,
):
    enroll_member(external_id="M-R", email="r@example.com")
    enroll_member(external_id="M-F", email="f@example.com", referred_by="M-R")
    # Force the interleaving that a busy till and a large file give by chance: the till
    # holds the friend and is about to pay the referrer while the import locks its members.
    meet = threading.Barrier(2, timeout=5)
    pay_referral, lock_members = earning.pay_referral, posting.lock_members

    def paying(*args, **kwargs):
        meet.wait()
        time.sleep(0.5)  # the import is now waiting for the friend, holding the referrer
        return pay_referral(*args, **kwargs)

    def locking(codes, **also):
        meet.wait()
        return lock_members(codes, **also)

    monkeypatch.setattr(earning, "pay_referral", paying)
    monkeypatch.setattr(posting, "lock_members", locking)
    day = timezone.localdate().isoformat()
    file = f"I-1,M-R,purchase,10,{day},,,\nI-2,M-F,purchase,10,{day},,,\n"
    body = {
        "external_id": "A-1",
        "member": "M-F",
        "kind": "purchase",
        "amount": "10.00",
        "occurred_at": recently(),
    }

    def work(i):
        if i == 0:
            return run(file)
        return post(client_for(till.secret), "/api/v1/transactions", body)

    results = run_together(2, work)

    assert not any(isinstance(r, Exception) for r in results), results  # deadlock detected
    assert results[0].errors == [] and results[0].new == 2
    assert results[1].status_code == 201
    assert Transaction.objects.count() == 3


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_imports_over_a_referral_chain_wait_for_each_other(tiers, no_campaigns, monkeypatch):
    enroll_member(external_id="M-R", email="r@example.com")
    enroll_member(external_id="M-F", email="f@example.com", referred_by="M-R")
    enroll_member(external_id="M-G", email="g@example.com", referred_by="M-F")
    meet = threading.Barrier(2, timeout=5)
    lock_referrers = importing.lock_referrers

    def locking(locked, plan):
        try:
            meet.wait()  # both imports hold their members' locks
        except threading.BrokenBarrierError:
            pass  # the other waits on a lock: fine
        return lock_referrers(locked, plan)

    monkeypatch.setattr(importing, "lock_referrers", locking)
    files = [
        "A-1,M-F,purchase,10,2026-03-01,,,\n",  # locks F, then its referrer R
        "B-1,M-R,purchase,10,2026-03-01,,,\nB-2,M-G,purchase,10,2026-03-01,,,\n",  # R, G, then F
    ]

    results = run_together(2, lambda i: run(files[i]))

    assert not any(isinstance(r, Exception) for r in results), results  # deadlock detected
    assert sorted(r.new for r in results) == [1, 2]
    assert Transaction.objects.count() == 3


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_merge_giving_the_buyer_a_referrer_while_their_first_purchase_is_on_its_way_pays_it(
    tiers, no_campaigns, staff, monkeypatch
):
    # given: the friend's account, referred by M-R, and the account they keep, not referred
    referrer = enroll_member(external_id="M-R", email="r@example.com")
    kept = enroll_member(external_id="M-K", email="k@example.com")
    duplicate = enroll_member(external_id="M-D", email="d@example.com", referred_by="M-R")
    read, merged = threading.Event(), threading.Event()
    cached = earning.sql.cached

    def pausing(member):  # the till has read the account kept, no referral due yet
        value = cached(member)
        read.set()
        merged.wait(10)
        return value

    monkeypatch.setattr(earning.sql, "cached", pausing)

    def work(i):
        if i == 0:
            return record_purchase(
                member=kept, amount=Decimal("20"), occurred_at=timezone.now(), external_id="T-1"
            )
        # when: an agent merges the duplicate into it meanwhile (rules.md: the kept
        # account's first purchase then pays the referral)
        assert read.wait(10)
        try:
            return merge(kept, duplicate, staff)
        finally:
            merged.set()

    results = run_together(2, work)

    # then: the purchase pays the referrer
    assert not any(isinstance(r, Exception) for r in results), results
    assert Member.objects.get(pk=kept.pk).referred_by_id == referrer.pk
    paid = LedgerEntry.objects.get(member=referrer)
    assert paid.reason == "Referral: M-K made a first purchase (T-1)"
    assert Member.objects.get(pk=referrer.pk).points_balance == 200
