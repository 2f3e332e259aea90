"""Audit of concurrent writers outside the API's purchases and redemptions, on
PostgreSQL with real connections: what staff see when two of them act at once."""

import io
import threading

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, connections

from core.models import ImportBatch
from points.models import AdjustmentLimit, AdjustmentRequest, LedgerEntry, Transaction
from points.services import batches, grants_sql, sql
from points.services.goodwill import adjust_or_request, approve_request
from tests.conftest import postgres_only, run_together, summary

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


# Two imports naming one id for different members (P8: the second file is wrong)


@pytest.fixture
def both_past_the_check(monkeypatch):
    """Both imports of a test look for ids recorded before, then go on together: each
    writes an id the other is about to write (once: an import run again goes alone)."""
    meet = threading.Barrier(2)

    def hold(module):
        looked = module.mark_recorded
        met = threading.local()

        def mark_recorded():
            looked()
            if not getattr(met, "done", False):
                met.done = True
                meet.wait(10)

        monkeypatch.setattr(module, "mark_recorded", mark_recorded)

    return hold


def uploaded(kind, text, by):
    """A file imported from the CX Manager (Transactions > Import's confirm, which
    keeps it in the list of imports as an upload does): its batch as the list shows it."""
    try:
        batches.import_now(kind=kind, data=text.encode(), file_name=f"{kind}.csv", by=by)
    except Exception:  # noqa: BLE001, S110 - the list of imports says what went wrong
        pass
    try:
        return ImportBatch.objects.filter(kind=kind, uploaded_by=by).get()
    finally:
        connections.close_all()


def test_P8_two_grant_files_naming_one_id_for_other_members_at_once_list_the_row(
    make_member, user_in, both_past_the_check
):
    # given: two marketers upload grants at the same moment, both with the id SPRING-1,
    # one for M-0001, the other for M-0002
    make_member("M-0001"), make_member("M-0002")
    both_past_the_check(grants_sql)
    uploaders = [user_in(name, "Marketer") for name in ("ana", "ben")]
    files = [
        f"external_id,member,points,reason,definition\nSPRING-1,{code},50,Spring apology,\n"
        for code in ("M-0001", "M-0002")
    ]

    # when
    shown = run_together(2, lambda i: uploaded(ImportBatch.Kind.GRANTS, files[i], uploaders[i]))

    # then: one is granted; the other lists its row, as if it had come second, and is
    # not a failed import naming a database constraint
    statuses = sorted(batch.status for batch in shown)
    assert statuses == [ImportBatch.Status.DONE, ImportBatch.Status.INVALID], shown
    (refused,) = [batch for batch in shown if batch.status == ImportBatch.Status.INVALID]
    assert refused.first_errors == [
        [2, "external_id", "SPRING-1 was already imported with other content"]
    ]
    assert LedgerEntry.objects.filter(external_id="SPRING-1").count() == 1
    call_command("check_ledger")


def test_P8_two_transaction_files_naming_one_id_for_other_members_at_once_list_the_row(
    make_member, user_in, both_past_the_check
):
    # given: two operators import the files of two stores at the same moment, whose
    # tills both numbered a receipt T-1001
    make_member("M-0001"), make_member("M-0002")
    both_past_the_check(sql)
    operators = [user_in(name, "Operations") for name in ("olga", "omar")]
    files = [
        "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
        f"T-1001,{code},purchase,10.00,2026-03-01,pos,{store},\n"
        for code, store in (("M-0001", "STORE-01"), ("M-0002", "STORE-02"))
    ]

    # when
    shown = run_together(
        2, lambda i: uploaded(ImportBatch.Kind.TRANSACTIONS, files[i], operators[i])
    )

    # then
    statuses = sorted(batch.status for batch in shown)
    assert statuses == [ImportBatch.Status.DONE, ImportBatch.Status.INVALID], shown
    (refused,) = [batch for batch in shown if batch.status == ImportBatch.Status.INVALID]
    assert refused.first_errors == [
        [2, "external_id", "T-1001 was already imported with other content"]
    ]
    assert Transaction.objects.filter(external_id="T-1001").count() == 1
    call_command("check_ledger")


def test_P8_the_command_importing_an_id_a_file_of_the_cx_manager_took_meanwhile_lists_the_row(
    make_member, user_in, monkeypatch, tmp_path
):
    # given: the same two files, one imported from the command line, the other from
    # the CX Manager, which records T-1001 after the command looked for it
    make_member("M-0001"), make_member("M-0002")
    operator = user_in("olga", "Operations")
    header = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
    path = tmp_path / "store-01.csv"
    path.write_text(header + "T-1001,M-0001,purchase,10.00,2026-03-01,pos,STORE-01,\n")
    other = header + "T-1001,M-0002,purchase,10.00,2026-03-01,pos,STORE-02,\n"
    looked, shop_done, command_thread = sql.mark_recorded, threading.Event(), []

    def mark_recorded():
        looked()
        if threading.current_thread() in command_thread:
            command_thread.clear()  # once: run again, it goes alone
            shop_done.wait(10)

    monkeypatch.setattr(sql, "mark_recorded", mark_recorded)

    def command():
        command_thread.append(threading.current_thread())
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("import_transactions", str(path), stdout=out, stderr=err)
        except SystemExit:  # exit status 1: rows with errors
            pass
        finally:
            connections.close_all()
        return out.getvalue(), err.getvalue()

    def shop():
        try:
            return uploaded(ImportBatch.Kind.TRANSACTIONS, other, operator)
        finally:
            shop_done.set()

    # when
    said, batch = run_together(2, lambda i: command() if i == 0 else shop())

    # then: the command says what is wrong with its file, as for a file imported after
    assert batch.status == ImportBatch.Status.DONE, batch.failure
    assert isinstance(said, tuple), said
    out, err = said
    assert err.strip() == "line 2, external_id: T-1001 was already imported with other content"
    assert out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1", out
    assert Transaction.objects.get(external_id="T-1001").member.external_id == "M-0002"
