"""The periodic jobs as beat runs them, points expiry (E1-E4) and tier degradation
(D1-D4), against what members, the previews and webhooks are told: an erased member is
reminded of nothing, the degradation preview of today is tonight's run, and the
reminder reads its count as English."""

import html
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from api import webhook_endpoints, webhooks
from core.days import end_of
from core.events import EventType
from core.models import WebhookEndpoint
from members.models import Member, Notification
from members.services import erase_member, send_pending_notifications
from points.models import ExpiryPolicy
from points.services import expire_points, send_expiry_reminders
from points.services.freezing import freeze_member, unfreeze_member
from tests.api.receiver import start_receiver
from tests.conftest import at, local_time
from tests.points.test_audit_expiry_figures import set_expiry
from tiers.models import DegradationPolicy
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db
MADRID = ZoneInfo("Europe/Madrid")


def reminders(member):
    """The expiry reminders queued for the member: [(cutoff, points)]."""
    return list(
        Notification.objects.filter(member=member, kind="expiry_reminder")
        .order_by("cutoff")
        .values_list("cutoff", "points")
    )


def local(day: str, hour: int, minute: int = 0) -> datetime:
    return local_time(datetime.fromisoformat(day).replace(hour=hour, minute=minute))


# Expiry reminders of an erased member.


@pytest.fixture
def receiver():
    receiver, server = start_receiver()
    yield receiver
    server.shutdown()


def test_E4_an_erased_member_s_points_expiring_is_not_sent_to_the_brand_s_systems(
    receiver, make_member, buy, staff
):
    """What the brand meets: a customer asked to be forgotten (erased); on 16 April,
    14 days before the 30 April cutoff, the reminders job queues "points expire on
    30 April" for the erased account, and the CRM subscribed to points.expiring
    receives it within seconds (member "ERASED-..."), to push the reminder to a
    customer who asked to be forgotten.
    The e-mail of that reminder is dropped a minute later (rules.md, Messages to
    members: "Messages to an erased member are dropped, including those a job queues
    after the erasure"), but its webhook, the same reminder for the CRM to send, is
    not (rules.md, Webhooks: a points.expiring of an erased member is withdrawn, never
    sent). The job keeps queueing it again every day until the cutoff, since each drop
    deletes the row the once-per-cutoff constraint relies on."""
    # given: monthly expiry; a Bronze member with 500 points, then erased; a CRM
    # subscribed to points.expiring
    set_expiry("monthly", date(2026, 4, 1))
    member = make_member("M-FORGET", joined_at=at("2026-03-01"))
    buy(member, "500", when=at("2026-04-02"))
    erase_member(member=member, by=staff)
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.POINTS_EXPIRING])
    )

    # when: the reminders run on 16 April at 09:00, the webhook sender runs (every five
    # seconds) and the e-mails go (every minute); and again the next day
    send_expiry_reminders(now=local("2026-04-16", 9))
    webhooks.send_due(endpoint_id=endpoint.pk)
    send_pending_notifications()
    send_expiry_reminders(now=local("2026-04-17", 9))

    # then: the brand's systems heard no reminder for the erased customer, and none
    # waits for them
    heard = [Webhook(endpoint.secret).verify(r.body, r.headers) for r in receiver.received]
    assert heard == []
    assert reminders(member) == []


# preview_degradation without a date.


def test_D1_preview_degradation_of_today_lists_who_tonight_s_run_drops(
    client, login, make_member, buy, capsys
):
    """What the marketer meets: before switching degradation on, `python manage.py
    preview_degradation` (its help: "on a date (default today)", "--date: the job's
    run at the end of that day") says "0 members would drop", while the same command
    with `--date <today>` lists the Gold member whose 90 days end this evening, the
    member page says "Without a purchase, drops to Silver at tonight's run", and the
    policy's confirmation page counts them among those the next nightly run drops
    (rules.md D1). Without --date the command reads the job at this very moment, not
    the run of today: the default is not "today"."""
    # given: a Gold member whose 90 days without a purchase end a minute before midnight
    period_ends = end_of(timezone.localdate()) - timedelta(minutes=1)
    member = make_member(joined_at=period_ends - timedelta(days=200))
    buy(member, "3000", when=period_ends - timedelta(days=90))
    DegradationPolicy.objects.filter(pk=DegradationPolicy.current().pk).update(enabled=True)
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    DegradationPolicy.objects.update(enabled=False)  # the marketer previews before switching on

    # when: the marketer previews today, once by default and once naming today
    call_command("preview_degradation")
    by_default = capsys.readouterr().out
    call_command("preview_degradation", "--date", timezone.localdate().isoformat())
    named_today = capsys.readouterr().out

    # then: both list the member, whom the member page says tonight's run drops
    assert "Without a purchase, drops to Silver at tonight's run" in html.unescape(page)
    assert f"{member.external_id}: Gold -> Silver (qualified Gold)" in named_today
    assert "1 member would drop." in named_today
    assert by_default == named_today


# The reminder's wording of its count.


def test_E4_the_reminder_reads_its_count_as_english(make_member, buy):
    """What the member meets: a member with one point at stake gets an e-mail titled
    "1 points expire on 30 April"; one with 1,250 points reads "1250 points expire on
    30 April", while the member page writes "1,250 points expire on 30 Apr 2026" and
    rules.md quotes "1,200 points expire on 31 Jan". Counts read as English everywhere
    else ("1 point", "1,000 members": core.words.counted, the pages' intcomma); the one
    message every member of an expiring tier gets does not (E4's reminder)."""
    # given: monthly expiry from 1 April; a Bronze member with 1 point, a Silver one
    # with 1,250 (1,150 earned and the Silver bonus of 100)
    set_expiry("monthly", date(2026, 4, 1))
    buy(make_member("M-ONE", joined_at=at("2026-03-01")), "1", when=at("2026-04-02"))
    buy(make_member("M-MANY", joined_at=at("2026-03-01")), "1150", when=at("2026-04-02"))

    # when: the reminders run 14 days before 30 April and the e-mails go
    assert send_expiry_reminders(now=local("2026-04-16", 9)) == 2
    send_pending_notifications()
    sent = {m.to[0]: m for m in mail.outbox if "expire" in m.subject}

    # then: counts read as English, as on the member page
    assert sent["m-many@example.com"].subject == "1,250 points expire on 30 April"
    assert (
        "1,250 points of your balance expire at the end of 30 April 2026."
        in sent["m-many@example.com"].body
    )
    assert sent["m-one@example.com"].subject == "1 point expires on 30 April"
    assert (
        "1 point of your balance expires at the end of 30 April 2026. Spend it on"
        in sent["m-one@example.com"].body
    )


# A degradation due in the small hours of a cutoff day.


def test_D2_E2_a_step_due_in_the_small_hours_of_a_cutoff_day_takes_what_the_member_was_told(
    make_member, buy
):
    """What the member meets: Gold (exempt from expiry), no purchase since 30 January
    01:30, so their 90 days end at 01:30 on 30 April, the monthly cutoff. On 16 April the
    member page says "drops to Silver on 30 Apr 2026" and nothing about expiry, and the
    reminders job tells them nothing: at the end of 30 April they are Gold, as the
    forecasts count a step due on the cutoff day itself after that day's run. But the
    nightly run of 03:15 on 30 April applied every step due by the time it ran: Silver
    from 03:15, and at midnight all their points expired, unannounced.
    The rule chosen (rules.md D2): a run applies the steps due by the start of its day,
    so whatever time it runs that day, the steps of a day are applied by the run that
    follows its end ("at tonight's run"), as the previews and the forecasts count them."""
    # given: degradation and monthly expiry on; a Gold member whose 90 days end at
    # 01:30 on 30 April, the cutoff
    set_expiry("monthly", date(2026, 4, 1))
    DegradationPolicy.objects.filter(pk=DegradationPolicy.current().pk).update(enabled=True)
    member = make_member("M-DAWN", joined_at=at("2026-01-02"))
    bought = local("2026-01-30", 1, 30)
    buy(member, "3000", when=bought)
    # days of the local calendar, as D2 counts
    period_ends = timezone.localtime(bought) + timedelta(days=90)
    assert period_ends == local("2026-04-30", 1, 30)

    # when: the jobs run as beat runs them, from the reminders 14 days before the cutoff
    # to the night after it
    reminded = send_expiry_reminders(now=local("2026-04-16", 9))
    degrade_inactive_members(now=local("2026-04-30", 3, 15))
    tier_on_cutoff_day = Member.objects.get(pk=member.pk).effective_tier.name
    expire_points(now=local("2026-05-01", 0, 5))
    degrade_inactive_members(now=local("2026-05-01", 3, 15))
    member.refresh_from_db()

    # then: what happened is what the member was told: Gold through the cutoff day,
    # nothing expired, Silver at the run after it
    assert reminded == 0
    assert tier_on_cutoff_day == "Gold"
    assert member.points_balance == 3250  # 3,000 earned and the Gold bonus
    assert member.effective_tier.name == "Silver"


# A freeze ended after the day's reminder run.


def test_E4_a_member_whose_freeze_an_agent_ends_after_the_reminder_run_is_reminded_at_once(
    make_member, buy, staff, on_commit
):
    """What the member meets: frozen past the month's cutoff (illness), so the morning's
    reminder run told them nothing: their points were not at stake. A CX agent ends the
    freeze in the afternoon, on the cutoff day or any day after the reminder day: the
    points are at stake at the cutoff again, and no run reminds them before it when the
    cutoff is tonight. The rule chosen (rules.md E4): a freeze ended once the reminder
    day has come reminds the member at once."""
    # given: monthly expiry from today, reminders 40 days before (so the day has come);
    # a Bronze member with 500 points, frozen past the cutoff, not reminded
    today = timezone.localdate()
    set_expiry("monthly", today)
    ExpiryPolicy.objects.update(reminder_days=40)
    member = make_member("M-FROZEN", joined_at=timezone.now() - timedelta(days=60))
    buy(member, "500", when=timezone.now() - timedelta(days=2))
    freeze_member(member=member, by=staff, until=today + timedelta(days=60), reason="Illness")
    send_expiry_reminders()
    told_while_frozen = reminders(member)

    # when: an agent ends the freeze
    on_commit(lambda: unfreeze_member(member=member, by=staff))

    # then: reminded at once of the points the cutoff takes
    assert told_while_frozen == []
    assert [points for _, points in reminders(member)] == [500]
