"""core.figures: kept figures out of date are computed by one process at a time; the
others asking meanwhile (every agent opening the dashboard just after an import) get
its figures instead of each reading the whole tables."""

import time

import pytest

from core import figures
from tests.conftest import run_together


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_figures_asked_for_at_once_are_computed_once_and_shared():
    # given: figures that take a moment to compute
    computed = []

    def compute():
        computed.append(1)
        time.sleep(0.5)
        return len(computed)

    # when five visits ask for them at the same moment
    answers = run_together(5, lambda i: figures.kept("slow", compute))

    # then: computed once, every visit shown the same figures
    assert computed == [1]
    assert [answer["value"] for answer in answers] == [1] * 5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_when_the_process_computing_fails_another_computes_them():
    # given: the first to compute fails after a moment
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return "figures"

    # when two visits ask at once
    answers = run_together(2, lambda i: figures.kept("flaky", compute))

    # then: one saw the failure; the other, waiting, computed them itself
    assert sorted(type(answer).__name__ for answer in answers) == ["RuntimeError", "dict"]
    assert next(a for a in answers if isinstance(a, dict))["value"] == "figures"
