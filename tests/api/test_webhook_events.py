"""Every event of the contract, from every door that makes it: single writes, the CSV
import and the bulk jobs (which report set-based, once per change however often they
run)."""

import io
from datetime import date, timedelta

import pytest

from api import webhook_endpoints, webhooks
from core import events
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Notification
from members.services import enroll_member
from points.models import ExpiryPolicy, PointDefinition
from points.resources import read_transactions
from points.services import (
    award_action,
    expire_points,
    import_transactions,
    send_expiry_reminders,
)
from rewards.services import cancel_redemption, redeem
from tests.api.conftest import post, recently
from tests.api.receiver import start_receiver
from tests.conftest import at
from tiers.models import Tier
from tiers.services import degrade_inactive_members, recalculate_all_tiers

pytestmark = pytest.mark.django_db


@pytest.fixture
def hear():
    """hear(*types) -> a function that sends what is due and returns the verified bodies
    received so far."""
    servers = []

    def hear(*types):
        receiver, server = start_receiver()
        servers.append(server)
        endpoint = webhook_endpoints.save_endpoint(
            WebhookEndpoint(url=receiver.url, events=list(types))
        )

        def received():
            webhooks.send_due(endpoint_id=endpoint.pk)
            from standardwebhooks import Webhook

            signer = Webhook(endpoint.secret)
            return [signer.verify(r.body, r.headers) for r in receiver.received]

        return received

    yield hear
    for server in servers:
        server.shutdown()


def data(bodies):
    return [b["data"] for b in bodies]


def test_an_enrolment_sends_member_enrolled(hear, tiers):
    received = hear(EventType.MEMBER_ENROLLED)
    enroll_member(external_id="M-NEW", email="new@example.com", first_name="Ana")
    (event,) = received()
    assert event["type"] == "member.enrolled"
    assert event["data"]["member"] == "M-NEW"
    assert event["data"]["tier"] == {"code": "bronze", "name": "Bronze"}


def test_member_enrolled_names_the_tier_joined_in_when_sent_after_a_tier_up(
    hear, api, tiers, no_campaigns
):
    # given a CRM that hears enrolments and tier changes
    received = hear(EventType.MEMBER_ENROLLED, EventType.MEMBER_TIER_CHANGED)

    # when a till enrols a customer and records her first purchase, Silver at once,
    # before the sender has run
    post(api, "/api/v1/members", {"external_id": "M-NEW", "email": "new@example.com"})
    purchase = {
        "external_id": "T-NEW-1",
        "member": "M-NEW",
        "kind": "purchase",
        "amount": "1200.00",
        "occurred_at": recently(),
    }
    assert post(api, "/api/v1/transactions", purchase).status_code == 201

    # then the enrolment says the tier she joined in, and the tier change takes her on
    enrolled, changed = received()
    assert enrolled["type"] == "member.enrolled"
    assert enrolled["data"]["tier"] == {"code": "bronze", "name": "Bronze"}
    assert changed["data"]["from_tier"] == {"code": "bronze", "name": "Bronze"}
    assert changed["data"]["to_tier"] == {"code": "silver", "name": "Silver"}


def test_a_status_match_says_its_last_day_and_other_tier_changes_say_none(
    hear, make_member, buy, tiers, staff
):
    """Noticed by an audit: a status match's event did not say when the match ends, which
    the CRM needs to tell the customer."""
    from tiers.services import grant_status

    received = hear(EventType.MEMBER_TIER_CHANGED)
    member = make_member()
    buy(member, "1200", when=at("2026-03-02"))  # Silver
    until = date(2026, 6, 30)

    grant_status(
        member=member,
        tier=tiers["gold"],
        until=until,
        reason="Competitor",
        by=staff,
        now=at("2026-03-03"),
    )

    upgrade, matched = data(received())
    assert (upgrade["reason"], upgrade["status_match_until"]) == ("upgrade", None)
    assert (matched["reason"], matched["to_tier"]["code"]) == ("status_match", "gold")
    assert matched["status_match_until"] == "2026-06-30"


def test_an_expiry_cutoff_reports_each_expired_member_once(hear, make_member, buy):
    received = hear(EventType.POINTS_EXPIRED)
    bronze, silver, gold = make_member(), make_member(), make_member()
    buy(bronze, 120, when=at("2026-03-02"))
    buy(silver, 1500, when=at("2026-03-02"))
    buy(gold, 4000, when=at("2026-03-02"))  # Gold's points never expire
    ExpiryPolicy.objects.update(cycle="monthly", starts_on=date(2026, 3, 1))
    expire_points(now=at("2026-04-02"))
    expire_points(now=at("2026-04-03"))  # again: nothing new
    events = data(received())
    assert sorted((e["member"], e["points"], e["cutoff"]) for e in events) == [
        (bronze.external_id, 120, "2026-03-31"),
        (silver.external_id, 1600, "2026-03-31"),  # 1,500 and Silver's welcome bonus
    ]


def test_an_expiry_reminder_sends_points_expiring(hear, make_member, buy):
    received = hear(EventType.POINTS_EXPIRING)
    member = make_member()
    buy(member, 20, when=at("2026-03-01"))
    ExpiryPolicy.objects.update(cycle="quarterly", starts_on=date(2026, 1, 1))
    send_expiry_reminders(now=at("2026-03-17"))
    send_expiry_reminders(now=at("2026-03-18"))
    (event,) = data(received())
    assert event == {"member": member.external_id, "cutoff": "2026-03-31", "points": 20}


def test_an_endpoint_added_after_a_reminder_run_hears_only_the_reminders_of_later_runs(
    hear, make_member, buy
):
    """Found by a review: each run's event covered every reminder of the cutoff, and an
    endpoint added (or switched on) since heard all those of runs before, dated now."""
    # given: a member reminded before the CRM subscribed
    early = make_member()
    buy(early, 20, when=at("2026-03-01"))
    ExpiryPolicy.objects.update(cycle="quarterly", starts_on=date(2026, 1, 1))
    send_expiry_reminders(now=at("2026-03-17"))
    received = hear(EventType.POINTS_EXPIRING)

    # when: the next day's run reminds a member who has bought since
    late = make_member()
    buy(late, 30, when=at("2026-03-18"))
    send_expiry_reminders(now=at("2026-03-18"))

    # then: the CRM hears of that reminder alone
    assert data(received()) == [{"member": late.external_id, "cutoff": "2026-03-31", "points": 30}]


def test_a_reminder_dropped_as_its_event_was_written_is_not_sent(hear, make_member, buy):
    """Found by a review: a merge's withdrawal did not see an event being written, and
    it went out as {"data": {"deleted": true}}."""
    received = hear(EventType.POINTS_EXPIRING)
    member = make_member()
    buy(member, 20, when=at("2026-03-01"))
    ExpiryPolicy.objects.update(cycle="quarterly", starts_on=date(2026, 1, 1))
    send_expiry_reminders(now=at("2026-03-17"))
    events.expand_bulk_events()
    # the reminder dropped by a merge, its event's delivery left pending (the race)
    Notification.objects.filter(member=member).delete()

    assert received() == []
    delivery = WebhookDelivery.objects.get(type=EventType.POINTS_EXPIRING)
    assert (delivery.status, delivery.last_error) == ("failed", webhooks.GONE_SUBJECT)


def test_a_degradation_run_reports_each_drop_once(hear, make_member, buy, degradation):
    received = hear(EventType.MEMBER_TIER_CHANGED)
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, 4000, when=at("2026-01-02"))  # Gold
    received()  # the upgrade, heard
    later = at("2026-01-02") + timedelta(days=91)
    degrade_inactive_members(now=later)
    degrade_inactive_members(now=later)  # the same run again
    (event,) = data(received())[1:]
    assert (event["reason"], event["from_tier"]["code"], event["to_tier"]["code"]) == (
        "degradation",
        "gold",
        "silver",
    )


def test_a_threshold_change_reports_rules_changed(hear, make_member, buy):
    member = make_member()
    buy(member, 1200)  # Silver at 1,000
    received = hear(EventType.MEMBER_TIER_CHANGED)
    Tier.objects.filter(code="silver").update(threshold=1500)
    recalculate_all_tiers()
    (event,) = data(received())
    assert (event["member"], event["reason"], event["to_tier"]["code"]) == (
        member.external_id,
        "rules_changed",
        "bronze",
    )


def test_a_purchase_is_reported_before_the_tier_change_it_caused(hear, make_member, buy):
    received = hear(EventType.TRANSACTION_RECORDED, EventType.MEMBER_TIER_CHANGED)
    member = make_member("M-0001")

    buy(member, 1200, external_id="T-1")  # Silver at 1,000: as the API records it

    recorded, changed = received()
    assert (recorded["type"], recorded["data"]["external_id"]) == ("transaction.recorded", "T-1")
    assert (changed["type"], changed["data"]["to_tier"]["code"]) == (
        "member.tier_changed",
        "silver",
    )


def test_an_action_is_reported_with_the_definition_it_earned_through(hear, make_member, buy):
    received = hear(EventType.TRANSACTION_RECORDED)
    member = make_member("M-0001")
    review = PointDefinition.objects.get(handle="write-a-review")

    award_action(member=member, definition=review, occurred_at=at("2026-03-01"), external_id="A-1")
    buy(member, 10, external_id="T-1")

    action, purchase = data(received())
    assert (action["kind"], action["definition"], action["points"]) == (
        "action",
        "write-a-review",
        200,
    )
    assert (purchase["kind"], purchase["definition"]) == ("purchase", None)


def test_an_import_reports_its_transactions_and_tier_changes_once(hear, make_member):
    received = hear(EventType.TRANSACTION_RECORDED, EventType.MEMBER_TIER_CHANGED)
    member = make_member("M-0001")
    csv = (
        b"external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
        b"T-1,M-0001,purchase,1200.00,2026-03-01,pos,S-1,\n"
        b"T-2,M-0001,return,300.00,2026-03-03,pos,,T-1\n"
    )
    for _ in range(2):  # the same file twice: the second adds nothing
        rows, errors = read_transactions(io.BytesIO(csv))
        import_transactions(rows, errors=errors)
    events = received()
    assert [e["type"] for e in events] == [  # as sent: the transactions, then their effects
        "transaction.recorded",
        "transaction.recorded",
        "member.tier_changed",
        "member.tier_changed",
    ]
    recorded = {e["data"]["external_id"]: e["data"] for e in events if "external_id" in e["data"]}
    assert recorded["T-1"]["points"] == 1200 + 100  # with Silver's welcome bonus
    assert recorded["T-2"]["points"] == -300
    assert recorded["T-2"]["original_external_id"] == "T-1"
    changes = [e["data"] for e in events if e["type"] == "member.tier_changed"]
    assert [(c["to_tier"]["code"], c["reason"]) for c in changes] == [
        ("silver", "upgrade"),
        ("bronze", "downgrade"),
    ]
    assert all(c["member"] == member.external_id for c in changes)


def test_a_cancelled_redemption_sends_redemption_cancelled(hear, member, buy, catalogue, staff):
    buy(member, 2000)
    received = hear(EventType.REDEMPTION_CREATED, EventType.REDEMPTION_CANCELLED)
    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])
    cancel_redemption(redemption=redemption, by=staff, reason="changed their mind")
    created, cancelled = received()
    assert (created["type"], cancelled["type"]) == ("redemption.created", "redemption.cancelled")
    assert cancelled["data"]["id"] == redemption.pk
    assert cancelled["data"]["cancelled_at"] is not None


def test_a_redemption_cancelled_before_its_event_went_out_is_reported_as_made_then_cancelled(
    hear, member, buy, catalogue, staff
):
    # given: the CRM's endpoint down while the customer redeems and cancels
    buy(member, 2000)
    received = hear(EventType.REDEMPTION_CREATED, EventType.REDEMPTION_CANCELLED)
    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])
    cancel_redemption(redemption=redemption, by=staff, reason="changed their mind")

    # when: both go out together once it is back
    created, cancelled = received()

    # then: made, then cancelled, as they happened
    assert (created["type"], created["data"]["cancelled_at"]) == ("redemption.created", None)
    assert cancelled["data"]["cancelled_at"] is not None


def test_a_redemption_sends_its_voucher_for_the_crm_to_give_the_customer(
    hear, member, buy, catalogue
):
    buy(member, 2000)
    received = hear(EventType.REDEMPTION_CREATED)

    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])

    (created,) = received()
    assert {k: created["data"][k] for k in ("code", "valid_until", "value")} == {
        "code": redemption.code,
        "valid_until": redemption.valid_until.isoformat(),
        "value": "5.00",
    }


def test_nothing_is_written_when_no_endpoint_wants_the_event(make_member, buy, tiers):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/x", events=["points.expired"])
    buy(make_member(), 5000)
    assert not WebhookDelivery.objects.exists()
