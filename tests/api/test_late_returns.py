"""A till's return dated before an expiry cutoff that already took its purchase's
points (docs/rules.md, "A return recorded late"): the answer, the ledger and the member
page say what happened."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from points.expiry_selectors import cutoff_instant
from points.models import ExpiryPolicy
from points.services import expire_points
from tests.api.conftest import client_for, new_id, post
from tests.conftest import summary

pytestmark = pytest.mark.django_db


def test_a_till_returning_late_is_told_the_points_the_return_moved(
    client, login, make_member, buy, staff, till
):
    # given a monthly expiry whose last cutoff ran, having taken a purchase's 100
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", cutoff.replace(day=1)
    policy.save()
    member = make_member()
    bought = buy(member, "100", when=cutoff_instant(cutoff) - timedelta(days=20))
    expire_points(now=cutoff_instant(cutoff) + timedelta(minutes=5))
    assert summary(member, now=timezone.now())["available"] == 0

    # when the till returns it, dated before the cutoff
    dated = timezone.localtime(cutoff_instant(cutoff) - timedelta(days=10))
    body = {
        "external_id": new_id("R"),
        "member": member.external_id,
        "kind": "return",
        "amount": "100.00",
        "occurred_at": dated.isoformat(),
        "original_external_id": bought.external_id,
    }
    answer = post(client_for(till.secret), "/api/v1/transactions", body)

    # then the balance stays 0, and the answer says the return moved no points
    assert answer.status_code == 201, answer.content
    sent = json.loads(answer.content)
    assert sent["points"] == 0
    assert sent["summary"]["available"] == 0 and sent["summary"]["lifetime"] == 0
    # and the ledger explains it, through the API and on the member page
    ledger = json.loads(
        client_for(till.secret).get(f"/api/v1/members/{member.external_id}/ledger").content
    )
    back = [e for e in ledger["results"] if e["kind"] == "expiry" and e["points"] > 0]
    assert [e["points"] for e in back] == [100]
    assert back[0]["reason"].startswith(f"Expiry of {cutoff:%d %B %Y} given back: return ")
    login("CX agent")
    html = client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert (
        f"Block expiry at the end of {cutoff:%-d %b %Y} given back: it had taken the points "
        f"that return {body['external_id']}, dated {dated:%-d %b %Y} and recorded after it, "
        "takes back, so they are not taken twice"
    ) in html
