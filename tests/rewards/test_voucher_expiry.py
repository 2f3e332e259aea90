"""W6: a voucher that expires unused gives its unit back to the reward's stock (the item
was never handed out), once, whoever runs the nightly job and however often; its points
stay spent."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from members.services import enroll_member
from points.services import adjust_points
from rewards.models import Redemption, Reward, VoucherStatus
from rewards.services import cancel_redemption, redeem, release_expired_vouchers, use_voucher
from rewards.tasks import release_expired_vouchers_task
from tests.conftest import local_time, postgres_only, run_together, summary

pytestmark = pytest.mark.django_db


REDEEMED = local_time("2026-03-03 14:00")  # valid until the end of 1 June 2026 (90 days)
LAST_INSTANT = local_time("2026-06-01 23:59:59")
EXPIRED = local_time("2026-06-02 00:10")  # the night after its last day


@pytest.fixture
def given(tiers, staff):
    """give(code): a member with 5,000 points available since 1 January 2026."""

    def give(code):
        member = enroll_member(external_id=code, email=f"{code.lower()}@example.com")
        adjust_points(
            member=member,
            points=5_000,
            reason="Welcome",
            by=staff,
            now=local_time("2026-01-01 09:00"),
        )
        return member

    return give


@pytest.fixture
def tote(tiers):
    """The last tote bag: one unit left."""
    return Reward.objects.create(name="Tote bag", points_cost=800, stock=1)


def stock(reward) -> int | None:
    reward.refresh_from_db()
    return reward.stock


def test_W6_an_expired_unused_voucher_gives_its_unit_back_and_another_member_can_redeem_it(
    given, tote, staff
):
    # given: Ana took the last tote bag and never collected it; Luis cannot have one
    ana, luis = given("M-ANA"), given("M-LUIS")
    voucher = redeem(member=ana, reward=tote, now=REDEEMED)
    with pytest.raises(ValidationError, match="Out of stock"):
        redeem(member=luis, reward=tote, now=REDEEMED + timedelta(days=1))

    # when: the nightly job runs after the voucher's last day
    returned = release_expired_vouchers(now=EXPIRED)

    # then: the unit is back and Luis redeems it; Ana's points stay spent
    assert returned == 1 and stock(tote) == 1
    voucher.refresh_from_db()
    assert voucher.voucher_status_on(timezone.localdate(EXPIRED)) == VoucherStatus.EXPIRED
    assert summary(ana, now=EXPIRED)["available"] == 5_000 - 800
    redeem(member=luis, reward=tote, now=EXPIRED + timedelta(hours=9))
    assert stock(tote) == 0


def test_W6_a_voucher_is_valid_to_the_end_of_its_last_day_and_keeps_its_unit_until_then(
    given, tote
):
    # given
    voucher = redeem(member=given("M-ANA"), reward=tote, now=REDEEMED)

    # when: the job runs on its last day, at its last instant in Madrid
    returned = release_expired_vouchers(now=LAST_INSTANT)

    # then: nothing comes back, and the voucher can still be used
    assert returned == 0 and stock(tote) == 0
    used = use_voucher(code=voucher.code, external_id="RECEIPT-1", now=LAST_INSTANT)
    assert used.voucher_status_on(timezone.localdate(LAST_INSTANT)) == VoucherStatus.USED
    assert release_expired_vouchers(now=EXPIRED) == 0 and stock(tote) == 0


def test_W6_used_cancelled_and_valid_vouchers_are_left_as_they_are(given, tote):
    # given: a used voucher, a cancelled one and one still valid, of a reward with stock
    tote.stock = 10
    tote.save()
    ana = given("M-ANA")
    used, cancelled = (redeem(member=ana, reward=tote, now=REDEEMED) for _ in range(2))
    use_voucher(code=used.code, external_id="RECEIPT-1", now=REDEEMED + timedelta(days=1))
    cancel_redemption(redemption=cancelled, now=REDEEMED + timedelta(days=1))
    redeem(member=ana, reward=tote, now=EXPIRED - timedelta(days=1))  # valid to 30 Aug
    assert stock(tote) == 8

    # when
    returned = release_expired_vouchers(now=EXPIRED)

    # then
    assert returned == 0 and stock(tote) == 8


def test_W6_run_twice_or_late_the_unit_comes_back_once(given, tote):
    # given
    redeem(member=given("M-ANA"), reward=tote, now=REDEEMED)

    # when: the job runs, again the same night, and a week later
    runs = [release_expired_vouchers(now=EXPIRED + timedelta(days=days)) for days in (0, 0, 7)]

    # then
    assert runs == [1, 0, 0] and stock(tote) == 1


def test_W4_W6_cancelling_an_expired_voucher_refunds_its_points_but_not_its_unit_again(
    given, tote, staff
):
    # given: the tote bag voucher expired and its unit went back
    ana = given("M-ANA")
    voucher = redeem(member=ana, reward=tote, now=REDEEMED)
    release_expired_vouchers(now=EXPIRED)

    # when: an agent cancels it as a goodwill gesture
    cancel_redemption(redemption=voucher, by=staff, reason="Goodwill", now=EXPIRED)

    # then: the points come back, the unit does not come back a second time
    assert summary(ana, now=EXPIRED)["available"] == 5_000
    assert stock(tote) == 1
    assert release_expired_vouchers(now=EXPIRED + timedelta(days=1)) == 0
    assert stock(tote) == 1


def test_W4_W6_a_voucher_cancelled_after_its_last_day_before_the_job_gives_its_unit_once(
    given, tote, staff
):
    # given: an expired voucher the job has not reached yet
    voucher = redeem(member=given("M-ANA"), reward=tote, now=REDEEMED)

    # when: an agent cancels it, then the job runs
    cancel_redemption(redemption=voucher, by=staff, now=EXPIRED)
    returned = release_expired_vouchers(now=EXPIRED + timedelta(minutes=5))

    # then
    assert returned == 0 and stock(tote) == 1


def test_W6_a_reward_without_stock_stays_unlimited(given, tiers):
    # given
    coffee = Reward.objects.create(name="Coffee voucher", points_cost=150)
    redeem(member=given("M-ANA"), reward=coffee, now=REDEEMED)

    # when
    release_expired_vouchers(now=EXPIRED)

    # then: it took no unit, and gives none back
    assert stock(coffee) is None
    assert Redemption.objects.get().unit_returned_at is None


def test_W6_a_unit_given_back_never_takes_the_stock_above_its_most(given, tote):
    # given: a marketer set the most a stock may hold after the voucher was redeemed
    redeem(member=given("M-ANA"), reward=tote, now=REDEEMED)
    Reward.objects.filter(pk=tote.pk).update(stock=1_000_000_000)

    # when
    release_expired_vouchers(now=EXPIRED)

    # then: the reward's page still saves
    assert stock(tote) == 1_000_000_000
    tote.refresh_from_db()
    tote.full_clean()


def test_W6_the_nightly_job_is_a_beat_row_running_the_task(given, tote):
    # given: a voucher that expired yesterday
    voucher = redeem(member=given("M-ANA"), reward=tote, now=timezone.now() - timedelta(days=100))
    assert voucher.valid_until < timezone.localdate()

    # when: beat runs the task its row names
    row = PeriodicTask.objects.get(name="Return expired vouchers' units to stock")
    assert row.task == "rewards.tasks.release_expired_vouchers_task"
    assert str(row.crontab.timezone) == settings.TIME_ZONE
    returned = release_expired_vouchers_task.delay().get()

    # then
    assert returned == 1 and stock(tote) == 1


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_W6_jobs_running_at_the_same_time_give_each_unit_back_once(given, staff):
    # given: 30 tote bags redeemed and expired unused, and 30 coffees cancelled meanwhile
    tote = Reward.objects.create(name="Tote bag", points_cost=10, stock=30)
    coffee = Reward.objects.create(name="Coffee", points_cost=10, stock=30)
    ana = given("M-ANA")
    for reward in (tote, coffee):
        for _ in range(30):
            redeem(member=ana, reward=reward, now=REDEEMED)
    coffees = list(Redemption.objects.filter(reward=coffee))

    # when: four runs of the job and the cancellations, all at once
    def work(i):
        if i < 4:
            return release_expired_vouchers(now=EXPIRED)
        for redemption in coffees[i - 4 :: 4]:
            cancel_redemption(redemption=redemption, by=staff, now=EXPIRED)
        return 0

    results = run_together(8, work)

    # then: every unit came back once, by the job or by its cancellation
    assert not [r for r in results if isinstance(r, Exception)], results
    assert (stock(tote), stock(coffee)) == (30, 30)
    assert not Redemption.objects.filter(unit_returned_at=None).exists()
    assert 30 <= sum(results[:4]) <= 60


def test_W6_the_cancel_page_of_an_expired_voucher_promises_its_points_not_its_unit(
    given, tote, admin_client
):
    # given: a tote bag voucher expired, its unit back in stock
    ana = given("M-ANA")
    voucher = redeem(member=ana, reward=tote, now=REDEEMED)
    release_expired_vouchers(now=EXPIRED)

    # when: an agent opens its cancel page from the member page
    page = admin_client.get(
        reverse("admin:members_member_cancel_redemption", args=[ana.pk, voucher.pk])
    )

    # then
    text = " ".join(page.content.decode().split())
    assert "800 points come back to" in text
    assert "(the reward went back in stock when the voucher expired)" in text
    assert "and the reward goes back in stock" not in text
