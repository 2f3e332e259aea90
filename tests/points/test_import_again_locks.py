"""A file imported again locks only the members it writes for: those whose rows were
all recorded before are only compared, so a till's purchase for them, or a nightly
job's chunk, does not wait for the import to end (and, in the web, answer 503)."""

import io
import threading

import pytest
from django.db import DatabaseError, connections, transaction

from members.models import Member
from points.models import Transaction
from points.resources import read_transactions
from points.services import import_transactions
from tests.conftest import postgres_only
from tests.points.transaction_files import HEADER

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MARCH = "T-1,M-0001,purchase,120.50,2026-03-01,pos,S-1,\nT-2,M-0002,purchase,45.00,2026-03-02,,,\n"


def free(member) -> bool:
    """Whether another transaction can lock the member at once (NOWAIT)."""
    answer = []

    def lock():
        try:
            with transaction.atomic():
                Member.objects.select_for_update(nowait=True).get(pk=member.pk)
            answer.append(True)
        except DatabaseError:
            answer.append(False)
        finally:
            connections.close_all()

    thread = threading.Thread(target=lock)
    thread.start()
    thread.join()
    return answer[0]


def imported(text: str, *, while_importing) -> tuple:
    """The file imported, `while_importing()` called as its rows are computed."""
    rows, errors = read_transactions(io.BytesIO((HEADER + text).encode()))
    seen = []
    report = import_transactions(
        rows, errors=errors, on_chunk=lambda done, total: seen.append(while_importing())
    )
    return report, seen


def test_a_file_imported_again_holds_none_of_its_members(make_member):
    # given: the March file, imported
    ana, ben = make_member("M-0001"), make_member("M-0002")
    imported(MARCH, while_importing=lambda: None)

    # when: imported again, with a row for Ben not imported before
    again = MARCH + "T-3,M-0002,purchase,10.00,2026-03-03,,,\n"
    report, seen = imported(again, while_importing=lambda: (free(ana), free(ben)))

    # then: Ana, all of whose rows were imported, was never held; Ben was
    assert (report.new, report.skipped, report.errors) == (1, 2, [])
    assert seen and all(pair == (True, False) for pair in seen)
    assert Transaction.objects.count() == 3
