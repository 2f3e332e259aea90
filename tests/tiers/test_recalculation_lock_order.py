"""The recalculation after a threshold change locks the members it moves as every
writer of members does, in id order, all at once: locked tier band by tier band, it
crossed an import's locks (which go in id order) and PostgreSQL broke the deadlock by
failing one of them."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connections, transaction

from members.models import Member
from points.services import record_purchase
from tests.conftest import at, postgres_only
from tiers.models import Tier
from tiers.services import recalculate_all_tiers

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_recalculation_and_an_import_of_the_same_members_both_finish(make_member):
    # given: two members the new thresholds move, the first (lower id) from Gold down to
    # Silver's band, the second from Silver down to Bronze's, which is requalified first
    gold, silver = make_member(), make_member()
    record_purchase(
        member=gold, amount=Decimal("3500"), occurred_at=at("2026-03-01"), external_id="P-1"
    )
    record_purchase(
        member=silver, amount=Decimal("1500"), occurred_at=at("2026-03-01"), external_id="P-2"
    )
    Tier.objects.filter(code="silver").update(threshold=2000)
    Tier.objects.filter(code="gold").update(threshold=4000)
    failed, holding = [], threading.Event()

    def import_both():
        """As an import of a file naming both locks them: in id order, taking its time."""
        try:
            with transaction.atomic():
                Member.objects.select_for_update().get(pk=gold.pk)
                holding.set()
                time.sleep(1)  # the recalculation starts meanwhile
                Member.objects.select_for_update().get(pk=silver.pk)
        except Exception as error:
            failed.append(error)
        finally:
            connections.close_all()

    def recalculate():
        try:
            recalculate_all_tiers()
        except Exception as error:
            failed.append(error)
        finally:
            connections.close_all()

    # when: the recalculation runs while the import holds the first member
    importing = threading.Thread(target=import_both)
    importing.start()
    assert holding.wait(10)
    recalculating = threading.Thread(target=recalculate)
    recalculating.start()
    importing.join()
    recalculating.join()

    # then: neither was failed to break a deadlock, and both members moved
    assert failed == []
    tiers = dict(Member.objects.values_list("pk", "qualified_tier__code"))
    assert (tiers[gold.pk], tiers[silver.pk]) == ("silver", "bronze")
