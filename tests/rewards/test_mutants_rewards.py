"""Rules of rewards whose breaking no other test noticed (found by mutation): the edges
of a reward's active window (W1) and the last unit of stock under a race (W3)."""

import threading
import time as clock
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from points.services import adjust_points
from rewards.models import Redemption, Reward
from rewards.services import redeem
from tests.conftest import postgres_only
from tests.rewards.races import redemption_uncommitted

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def reward(name, cost, **fields):
    return Reward.objects.create(name=name, points_cost=cost, **fields)


@pytest.fixture
def rich(member, staff):
    adjust_points(member=member, points=500, reason="test", by=staff)
    return member


def test_W1_a_reward_can_be_redeemed_from_the_first_instant_of_its_window(rich):
    """W1: available_from is included in the active window."""
    opens = NOW + timedelta(days=1)
    coffee = reward("Coffee voucher", 150, available_from=opens)
    redemption = redeem(member=rich, reward=coffee, now=opens)
    assert redemption.points == 150


def test_W1_a_reward_cannot_be_redeemed_once_its_window_has_ended(rich):
    """W1: available_until is excluded: at that instant the reward is no longer available."""
    closes = NOW + timedelta(days=1)
    coffee = reward("Coffee voucher", 150, available_until=closes)
    with pytest.raises(ValidationError, match="No longer available"):
        redeem(member=rich, reward=coffee, now=closes)
    assert not Redemption.objects.exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_W3_a_member_who_read_the_last_unit_before_it_went_is_told_it_is_out_of_stock(
    make_member, staff
):
    """W3: an app's redemption waiting on the last unit another takes is told "Out of stock"."""
    first, second = make_member(), make_member()
    for m in (first, second):
        adjust_points(member=m, points=100, reason="test", by=staff)
    last = reward("Last one", 100, stock=1)
    outcome = {}

    def second_redeems():
        try:
            outcome["second"] = redeem(member=second, reward=last, external_id="RDM-2")  # an app's
        except Exception as exc:  # noqa: BLE001 - what the agent is told
            outcome["second"] = exc
        finally:
            connections.close_all()

    with redemption_uncommitted(first, last) as commit:  # the first takes the unit
        two = threading.Thread(target=second_redeems)
        two.start()
        clock.sleep(1)  # the second has read one unit left and waits for the first's lock
        commit.set()
    two.join()
    assert isinstance(outcome["second"], ValidationError), outcome
    assert "Out of stock" in str(outcome["second"])
    assert Reward.objects.get(pk=last.pk).stock == 0
    assert Redemption.objects.filter(member=first).count() == 1
