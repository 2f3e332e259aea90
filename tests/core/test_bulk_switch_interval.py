"""Imports write with Python's threads switching faster (core.bulk.CopyBehind); two
imports in threads of one web process put the interval back once both are done
(found by a review: every later request of the process switched ten times as often)."""

import sys
import threading

import pytest
from django.db import connections

from core.bulk import CopyBehind
from tests.conftest import postgres_only

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_two_imports_overlapping_in_one_process_leave_the_switch_interval_as_it_was():
    before = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():  # starts first, ends first
        with CopyBehind():
            first_in.set()
            second_in.wait(5)
        first_out.set()
        connections.close_all()

    def second():
        first_in.wait(5)
        with CopyBehind():
            second_in.set()
            first_out.wait(5)
            during = sys.getswitchinterval()
        connections.close_all()
        seen.append(during)

    seen = []
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == [CopyBehind.SWITCH_INTERVAL]  # still fast while the second writes
    assert sys.getswitchinterval() == before
