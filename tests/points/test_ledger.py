"""P7 and P8: the ledger is append-only and the truth; transactions are idempotent."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from members.models import Member
from points.models import LedgerEntry, Transaction
from points.services import adjust_points, award_action
from tests.conftest import (
    at,
    definition,
    give_return,
    ledger_state,
    postgres_only,
    summary,
)

pytestmark = pytest.mark.django_db


# P7


def test_P7_ledger_entries_cannot_be_changed_or_deleted_in_code(member, staff):
    entry = adjust_points(member=member, points=10, reason="x", by=staff)
    entry.points = 1000
    with pytest.raises(ValidationError, match="append-only"):
        entry.save()
    with pytest.raises(ValidationError, match="append-only"):
        entry.delete()
    with pytest.raises(ValidationError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(points=1000)
    with pytest.raises(ValidationError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).points == 10


@postgres_only
@pytest.mark.parametrize("sql", ["UPDATE {t} SET points = 1000", "DELETE FROM {t}"])
def test_P7_the_database_refuses_update_and_delete_of_ledger_rows(member, staff, sql):
    adjust_points(member=member, points=10, reason="x", by=staff)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.format(t=LedgerEntry._meta.db_table))
    assert LedgerEntry.objects.get(member=member).points == 10


def test_P7_check_ledger_passes_when_caches_equal_the_ledger(member, buy, capsys):
    buy(member, "1234.56")
    call_command("check_ledger")
    assert "1 member checked, all equal the ledger" in capsys.readouterr().out


def test_P7_check_ledger_names_members_whose_cache_differs(make_member, buy, capsys):
    good, bad = make_member(), make_member()
    buy(good, "100")
    buy(bad, "100")
    Member.objects.filter(pk=bad.pk).update(points_balance=99)
    with pytest.raises(SystemExit) as exc:
        call_command("check_ledger")
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert bad.external_id in err and good.external_id not in err
    assert "balance 99, ledger 100" in err


def test_P7_check_ledger_repair_rebuilds_caches_from_the_ledger(member, buy, capsys):
    buy(member, "1000")
    Member.objects.filter(pk=member.pk).update(lifetime_points=5, points_balance=5)
    with pytest.raises(SystemExit):
        call_command("check_ledger", "--repair")
    call_command("check_ledger")
    s = summary(member)
    assert (s["lifetime"], s["available"], s["qualified_tier"].code) == (1000, 1100, "silver")


def test_P7_a_tier_up_purchase_writes_its_transaction_entries_and_caches_together(member, buy):
    # given a Bronze member (the write path differs on PostgreSQL: the rows must not)
    # when a purchase takes it to Silver
    txn = buy(member, "1000.50", external_id="T-UP", store="S-1", channel="pos")
    # then the transaction, its earn entry and the bonus are written, linked to it
    saved = Transaction.objects.get(pk=txn.pk)
    assert (saved.external_id, saved.member_id, saved.amount, saved.store, saved.channel) == (
        "T-UP",
        member.pk,
        Decimal("1000.50"),
        "S-1",
        "pos",
    )
    assert saved.occurred_at == txn.occurred_at and not txn._state.adding
    entries = list(
        LedgerEntry.objects.filter(member=member)
        .order_by("pk")
        .values_list("kind", "points", "counts_toward_tier", "redeemable", "transaction", "reason")
    )
    assert entries == [
        ("earn", 1000, True, True, txn.pk, "Bronze x1"),
        ("bonus", 100, False, True, txn.pk, "Welcome to Silver"),
    ]
    # and the member's caches and tiers are saved with them
    member.refresh_from_db()
    assert (member.points_balance, member.lifetime_points, member.last_purchase_at) == (
        1100,
        1000,
        txn.occurred_at,
    )
    assert member.qualified_tier.code == member.effective_tier.code == member.best_tier.code
    assert member.qualified_tier.code == "silver"
    assert member.tier_changes.get(reason="upgrade").to_tier.code == "silver"


# P8


def test_P8_the_same_external_id_twice_changes_nothing(member, buy):
    first = buy(member, "100", external_id="T-1001")
    before = ledger_state()
    again = buy(member, "100.00", external_id="T-1001")
    assert again.pk == first.pk and again.skipped
    assert ledger_state() == before


@pytest.mark.parametrize("change", [{"amount": "101"}, {"when": at("2026-03-03")}, {"store": "S2"}])
def test_P8_the_same_external_id_with_other_content_raises(member, buy, change):
    buy(member, "100", external_id="T-1002")
    before = ledger_state()
    kwargs = {"amount": "100", **change}
    with pytest.raises(ValidationError, match="already recorded with another"):
        buy(member, kwargs.pop("amount"), external_id="T-1002", **kwargs)
    assert ledger_state() == before


def test_P8_an_external_id_of_another_member_raises(make_member, buy):
    a, b = make_member(), make_member()
    buy(a, "100", external_id="T-1003")
    with pytest.raises(ValidationError, match="another member"):
        buy(b, "100", external_id="T-1003")


def test_P8_return_and_action_are_idempotent_too(member, buy):
    purchase = buy(member, "100")
    give_return(member, purchase, "10", external_id="R-9")
    assert give_return(member, purchase, "10", external_id="R-9").skipped
    referral = definition("write-a-review")
    kwargs = dict(
        member=member, definition=referral, occurred_at=at("2026-03-01"), external_id="A-9"
    )
    award_action(**kwargs)
    assert award_action(**kwargs).skipped
    assert summary(member)["lifetime"] == 100 - 10 + 200
