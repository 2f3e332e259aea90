"""Merges refused, naming why and writing nothing, and merges racing purchases or
each other (PostgreSQL)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Member
from members.services import erase_member
from points.models import (
    ExpiryPolicy,
)
from points.services import (
    adjust_points,
    expire_points,
    record_purchase,
)
from tests.conftest import (
    at,
    ledger_state,
    postgres_only,
    run_together,
    summary,
)
from tests.members.merging import fresh, merge

pytestmark = pytest.mark.django_db


# Refusals


@pytest.mark.parametrize(
    "case, message",
    [
        ("itself", "cannot be merged into itself"),
        ("into a closed member", "M-KEEP is closed (merged into M-THIRD): merge into M-THIRD"),
        ("into an erased member", "was erased: nothing can be merged into an erased member"),
        ("an erased member", "was erased at the customer's request: its points can never be"),
        ("twice", "M-OLD was already merged into M-KEEP"),
    ],
)
def test_refused_merges_name_why_and_write_nothing(case, message, keep, old, make_member, staff):
    # given
    survivor, duplicate = keep, old
    if case == "itself":
        duplicate = keep
    elif case == "into a closed member":
        merge(make_member("M-THIRD"), keep, staff)
    elif case == "into an erased member":
        erase_member(member=keep, by=staff)
    elif case == "an erased member":  # found by a review: its points became usable
        duplicate = erase_member(member=old, by=staff)
    elif case == "twice":
        merge(keep, old, staff)
        survivor = make_member("M-OTHER")
    before = ledger_state(), list(Member.objects.values_list("merged_into", flat=True))

    # when / then
    with pytest.raises(ValidationError) as refused:
        merge(survivor, duplicate, staff)
    assert message in str(refused.value)
    assert (ledger_state(), list(Member.objects.values_list("merged_into", flat=True))) == before


def test_a_merge_needs_a_staff_user_and_a_reason(keep, old, django_user_model):
    customer = django_user_model.objects.create_user("customer")
    with pytest.raises(ValidationError, match="must name the staff user"):
        merge(keep, old, customer)
    with pytest.raises(ValidationError, match="Say why the accounts are merged"):
        merge(keep, old, django_user_model.objects.create_user("agent2", is_staff=True), reason=" ")
    with pytest.raises(ValidationError, match="Say why the accounts are merged"):
        merge(keep, old, django_user_model.objects.get(username="agent2"), reason="\u200b\ufeff")
    assert not fresh(old).is_merged


def test_a_merge_waits_for_the_expiry_of_a_passed_cutoff(keep, old, staff):
    # given: quarterly expiry, the cutoff of 31 March passed but not yet processed
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "quarterly", date(2026, 3, 1)
    policy.save()
    now = at("2026-04-01", hour=0) + timedelta(minutes=2)

    # when / then
    with pytest.raises(ValidationError, match="The points expiry of 31 Mar 2026 has not finished"):
        merge(keep, old, staff, now=now)

    # and once the job has run, the merge goes through
    expire_points(now=now)
    assert merge(keep, old, staff, now=now + timedelta(minutes=5)).pk == keep.pk


# At the same time (PostgreSQL)


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_purchase_racing_a_merge_lands_on_one_account_and_the_ledger_agrees(keep, old, staff):
    # given
    record_purchase(
        member=old, amount=Decimal("100"), occurred_at=at("2026-03-01"), external_id="T-0"
    )

    # when: purchases on the old account race its merge (unlocked purchases included)
    def work(i):
        if i == 0:
            return merge(keep, old, staff)
        return record_purchase(
            member=old, amount=Decimal("10"), occurred_at=at("2026-03-02"), external_id=f"T-{i}"
        )

    results = run_together(6, work)

    # then: each purchase was recorded before the merge (and moved) or refused
    assert not isinstance(results[0], Exception), results[0]
    refused = [r for r in results[1:] if isinstance(r, ValidationError)]
    assert all("was merged into M-KEEP" in str(r) for r in refused)
    assert not [r for r in results[1:] if isinstance(r, Exception) and r not in refused]
    recorded = 5 - len(refused)
    assert summary(keep)["lifetime"] == 100 + 10 * recorded
    assert summary(old)["lifetime"] == 0
    call_command("check_ledger")


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_duplicate_merged_into_two_members_at_once_goes_to_one(keep, old, make_member, staff):
    # given
    other = make_member("M-OTHER")
    adjust_points(member=old, points=300, reason="Welcome", by=staff)

    # when
    results = run_together(2, lambda i: merge([keep, other][i], old, staff))

    # then: one merge, one refusal; the points are in one place
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "already merged" in str(errors[0])
    assert summary(keep)["available"] + summary(other)["available"] == 300
    call_command("check_ledger")
