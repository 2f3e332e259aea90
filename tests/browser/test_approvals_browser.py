"""The approval queue in a real browser: a supervisor who types a rejection reason and
presses Enter decides nothing (the form's default button is a disabled one); only a
button pressed decides."""

import pytest
from django.contrib.auth.models import Group

from points.models import AdjustmentLimit, AdjustmentRequest, LedgerEntry
from points.services.goodwill import adjust_or_request

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_enter_in_the_rejection_reason_approves_nothing(
    page, log_in, make_member, django_user_model
):
    # given: an agent's 5,000 points, above the agents' limit of 1,000
    AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX agent"), per_adjustment=1000, per_month=5000
    )
    agent = django_user_model.objects.create_user("maria", is_staff=True)
    agent.groups.add(Group.objects.get(name="CX agent"))
    member = make_member("M-00912")
    asked = adjust_or_request(member=member, points=5000, reason="Lost parcel", by=agent)
    assert isinstance(asked, AdjustmentRequest)
    log_in("CX supervisor")
    page.goto("/admin/approvals/")

    # when: the supervisor types why it is refused and presses Enter
    reason = page.get_by_label("Reason")
    reason.fill("Too many points for a lost parcel")
    reason.press("Enter")
    page.wait_for_timeout(500)

    # then: nothing was decided, and no point was given
    asked.refresh_from_db()
    assert asked.decided_at is None
    assert not LedgerEntry.objects.filter(member=member).exists()

    # when: the button named for the request is pressed
    page.get_by_role("button", name="Reject 5,000 points for M-00912").click()
    page.wait_for_selector(".messagelist")

    # then: rejected, with the reason typed
    asked.refresh_from_db()
    assert (asked.status, asked.decision_reason) == (
        "rejected",
        "Too many points for a lost parcel",
    )
    assert not LedgerEntry.objects.filter(member=member).exists()
