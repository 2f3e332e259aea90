from datetime import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.models import Member
from points.models import AdjustmentLimit, Campaign, LedgerEntry, PointDefinition
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_programme_and_is_idempotent(capsys):
    call_command("seed_demo", members=40)
    tiers = list(Tier.objects.values_list("code", "threshold", "multiplier", "points_expire"))
    assert [(c, t, float(m), e) for c, t, m, e in tiers] == [
        ("bronze", 0, 1.0, True),
        ("silver", 1000, 1.5, True),
        ("gold", 3000, 2.0, False),
        ("platinum", 8000, 3.0, False),
    ]
    assert PointDefinition.objects.filter(handle="write-a-review", kind="action").exists()
    assert PointDefinition.objects.get(awarded_on="enrolment").points == 50
    assert PointDefinition.objects.get(awarded_on="referral").handle == "refer-a-friend"
    weekend = Campaign.objects.get(name="Double points weekend", multiplier=2)
    # its days start at midnight where the programme is, as a marketer's campaign does
    starts, ends = timezone.localtime(weekend.starts_at), timezone.localtime(weekend.ends_at)
    assert (starts.time(), ends.time(), (ends.date() - starts.date()).days) == (time(0), time(0), 3)
    assert Campaign.objects.get(birthday_month_only=True).name == "Birthday double points"
    assert Member.objects.filter(referred_by__isnull=False).exists()
    assert Member.objects.filter(birth_date__isnull=False).exists()
    assert Member.objects.count() == 40
    limits = AdjustmentLimit.objects.values_list("group__name", "per_adjustment", "per_month")
    assert sorted(limits) == [("CX agent", 1000, 10000), ("CX supervisor", 10000, 100000)]
    state = (LedgerEntry.objects.count(), list(Member.objects.values_list("points_balance")))

    call_command("seed_demo", members=40)

    assert Campaign.objects.count() == 3 and Tier.objects.count() == 4
    assert (
        LedgerEntry.objects.count(),
        list(Member.objects.values_list("points_balance")),
    ) == state
    assert Member.objects.exclude(qualified_tier__code="bronze").exists()
    call_command("check_ledger")


def test_seed_demo_history_sends_no_messages_today():
    from django.db.models import F

    from members.models import Notification

    call_command("seed_demo", members=30)
    assert Notification.objects.exists()
    assert not Notification.objects.filter(sent_at=None).exists()
    # and none reads "Sent" before it was created
    assert not Notification.objects.filter(sent_at__lt=F("created_at")).exists()
    # each keeps the copy its page shows (found by an audit: every demo message read
    # "Sent before the CX Manager kept a copy")
    assert not Notification.objects.filter(sent_text="").exists()
    assert all(n.sent_copy[0] == n.member.email for n in Notification.objects.all()[:20])


def test_seed_demo_purchases_earn_at_the_tier_the_member_page_shows_then():
    """The demo is recorded as a real programme would have recorded it, in time order
    across members: a referral paid by a friend's first purchase in December counts
    before the referrer's own purchases of the year after. Seeded member by member, it
    came after them, backdated: the member page said "Silver since 16 Dec 2025" above
    a year of purchases "earned at Bronze x1"."""
    from datetime import timedelta

    from points.selectors import member_as_of

    # given: M-00015, whose friends M-00026 and M-00041 joined after them
    call_command("seed_demo", members=50)

    # then: each purchase names the tier the member held just before it, as of then
    wrong = []
    purchases = LedgerEntry.objects.filter(kind="earn", transaction__kind="purchase")
    for entry in purchases.select_related("member", "transaction").order_by("pk"):
        held = member_as_of(entry.member, entry.issued_at - timedelta(microseconds=1))
        if not entry.reason.startswith(f"{held['effective_tier'].name} x"):
            wrong.append((entry.member.external_id, entry.transaction.external_id, entry.reason))
    assert wrong == []
    assert Member.objects.get(external_id="M-00015").referrals.count() == 2


def test_seed_demo_leaves_the_stock_as_the_nightly_jobs_would():
    from django.utils import timezone

    from rewards.models import Redemption, VoucherStatus
    from rewards.services import release_expired_vouchers

    call_command("seed_demo", members=60)

    # the demo's past holds vouchers that expired unused (W6) ...
    expired = Redemption.voucher_status_q(VoucherStatus.EXPIRED, timezone.localdate())
    assert Redemption.objects.filter(expired).exists()
    # ... whose units are back already: the first night's job has none to give back
    assert release_expired_vouchers() == 0


def test_a_seed_stopped_half_way_leaves_nothing_and_the_next_run_seeds_it_whole(monkeypatch):
    """Found by a review: Ctrl-C during the first seed left the members enrolled without
    their history, and every later run skipped them ("Demo ready")."""
    from loyalty_site.management.commands import seed_demo

    # given: a seed stopped by Ctrl-C at its 20th purchase
    recorded, record_purchase = [], seed_demo.record_purchase

    def stopped(**fields):
        if len(recorded) == 20:
            raise KeyboardInterrupt
        recorded.append(fields["external_id"])
        return record_purchase(**fields)

    monkeypatch.setattr(seed_demo, "record_purchase", stopped)
    with pytest.raises(KeyboardInterrupt):
        call_command("seed_demo", members=40, verbosity=0)
    assert not Member.objects.exists() and not LedgerEntry.objects.exists()

    # when: run again
    monkeypatch.setattr(seed_demo, "record_purchase", record_purchase)
    call_command("seed_demo", members=40, verbosity=0)

    # then: the whole demo, its first purchases included
    assert Member.objects.count() == 40
    assert set(recorded) <= set(
        LedgerEntry.objects.filter(kind="earn").values_list("transaction__external_id", flat=True)
    )
