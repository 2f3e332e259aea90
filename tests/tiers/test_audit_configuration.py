"""Audit of the programme configuration marketers do in the CX Manager (tiers T1/T3,
degradation D1, expiry E1, point definitions P1/P5): each test is what a user should
see, and fails on the current code because of a defect."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import post_init
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.models import LedgerEntry, PointDefinition, Transaction
from points.services.freezing import freeze_member
from tiers.models import DegradationPolicy, Tier

pytestmark = pytest.mark.django_db


def _as_posted(form) -> dict:
    """What the browser sends back for an admin change form as it was rendered: the
    fields, and the hidden values the page was opened with."""
    posted = {}
    for name, value in form.initial.items():
        if value is True:
            posted[name] = "on"
        elif value is not False and value is not None:
            posted[name] = str(value)
    for field in form:
        if field.field.show_hidden_initial:
            shown = field.field.hidden_widget().format_value(field.initial)
            if shown is not None:
                posted[field.html_initial_name] = str(shown)
    return posted


def _marketer_client(django_user_model, name) -> Client:
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    client = Client()
    client.force_login(user)
    return client


def test_T1_a_tier_page_opened_before_another_marketer_changed_the_multiplier_does_not_undo_it(
    tiers, django_user_model
):
    """Ana opens Gold's page to add a benefit. Meanwhile Ben raises Gold's multiplier
    from x2 to x2.5 and saves. Ana saves her benefit: Gold is back at x2, with no word
    to either of them. Ben's x2.5 is gone and Gold members earn x2 again (P2), though
    both marketers think their change stands. T1 (multipliers are configuration a
    marketer sets), and the project's own rule for a page open while someone else saves
    ("a confirmation holds only for what it was shown against"; a reward's page "writes
    what the marketer changed"): a page must not silently write back values it did not
    change over a newer save. Ana should either keep Ben's x2.5 or be told that Gold
    changed since she opened it."""
    gold = Tier.objects.get(code="gold")
    url = reverse("admin:tiers_tier_change", args=[gold.pk])
    ana = _marketer_client(django_user_model, "ana")
    ben = _marketer_client(django_user_model, "ben")
    opened_by_ana = _as_posted(ana.get(url).context["adminform"].form)

    # Ben raises the multiplier and saves
    assert ben.post(url, {**opened_by_ana, "multiplier": "2.50"}).status_code == 302
    assert Tier.objects.get(pk=gold.pk).multiplier == 2.5

    # Ana, from the page she opened before, adds a benefit and saves
    page = ana.post(url, {**opened_by_ana, "benefits": opened_by_ana["benefits"] + "\nLounge"})

    # then Ben's multiplier stands, or Ana is told that Gold changed meanwhile
    told = page.status_code == 200 and "changed" in page.content.decode()
    assert told or Tier.objects.get(pk=gold.pk).multiplier == 2.5


def test_P1_the_tier_up_bonus_definition_does_not_accept_settings_the_programme_ignores(
    tiers, client, login, make_member, buy
):
    """A marketer opens Point definitions > "Tier-up bonus", unticks "Is active" and sets
    "Accrue delay days" to 30, and reads "changed successfully". The next member who
    reaches Silver still gets the 100-point bonus, spendable at once: both settings are
    saved and shown in the list, and ignored by the programme (points.services.posting
    writes the bonus with fixed flags and no delay). P1/P5 say a definition's
    `accrue_delay_days` and `is_active` decide its points ("definitions a marketer
    switched off cannot be used"), and T2 says the bonus is spendable at once: the
    admin must not offer, or must refuse, settings of this system definition that
    change nothing; otherwise the list tells staff the bonus is off while it is paid."""
    login("Marketer")
    bonus = PointDefinition.objects.get(handle="tier-up-bonus")
    url = reverse("admin:points_pointdefinition_change", args=[bonus.pk])
    form = client.get(url).context["adminform"].form
    # the page offers only the name: the rest is the programme's own
    assert "is_active" not in form.fields and "accrue_delay_days" not in form.fields
    posted = _as_posted(form)
    posted.pop("is_active", None)  # unticked, in a form made by hand
    posted["accrue_delay_days"] = "30"

    page = client.post(url, posted)

    member = make_member()
    buy(member, "1000", when=timezone.now())
    paid = LedgerEntry.objects.filter(member=member, definition=bonus)
    saved = PointDefinition.objects.get(pk=bonus.pk)
    refused = page.status_code in (200, 302) and saved.is_active and saved.accrue_delay_days == 0
    honoured = not paid.exists() or all(
        e.accrue_at - e.issued_at >= timedelta(days=30) for e in paid
    )
    assert refused or honoured, (
        f"saved as active={saved.is_active}, delay={saved.accrue_delay_days}; "
        f"bonus paid: {[(e.points, e.accrue_at - e.issued_at) for e in paid]}"
    )


def test_P1_the_delete_page_of_a_used_definition_counts_what_names_it_and_blames_no_permission(
    tiers, client, make_member, buy, django_user_model
):
    """Anyone (a marketer, even a superuser) who clicks "Delete" on "Purchase points"
    gets a page that loads every transaction and ledger entry of every purchase ever
    made (a million purchases: a million rows read to draw one page), and then says
    "your account doesn't have permission to delete the following types of objects:
    ledger entry", as if an account with more rights could delete the definition with
    the members' ledger. No account can: the ledger is append-only (P7) and the
    definition is kept by it. The tier's delete page does this right (T1: "counted,
    never listed", "Tier changes: 1,020 name Silver"); the definition's page should too:
    rows read must not grow with the ledger, and no permission is to blame."""
    member = make_member()
    superuser = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(superuser)
    purchase = PointDefinition.objects.get(kind="purchase", is_active=True)
    url = reverse("admin:points_pointdefinition_delete", args=[purchase.pk])
    loaded = []

    def count(sender, **kwargs):
        loaded.append(sender)

    post_init.connect(count, sender=LedgerEntry, weak=False)
    post_init.connect(count, sender=Transaction, weak=False)
    try:
        rows_read = {}
        for purchases in (3, 30):
            while Transaction.objects.count() < purchases:
                buy(member, "10", when=timezone.now() - timedelta(days=1))
            loaded.clear()
            page = client.get(url)
            rows_read[purchases] = len(loaded)
    finally:
        post_init.disconnect(count, sender=LedgerEntry)
        post_init.disconnect(count, sender=Transaction)

    assert rows_read[30] == rows_read[3], f"ledger rows read by the page: {rows_read}"
    assert "doesn't have permission to delete" not in page.content.decode()


def test_D1_the_degradation_confirmation_shows_members_only_to_staff_who_may_view_members(
    tiers, client, make_member, buy, django_user_model
):
    """A staff user given the degradation policy's permissions (and not the members'
    view: a member page answers them 403) switches degradation on. The confirmation
    lists the skipped members by customer code, with a link, and the reason of their
    freeze: "M-...: frozen until ...: Maternity leave", health data about a member they
    may not see. The CX Manager's rule: "Every page and action checks its own
    permission ... The expiry preview lists members, so it needs the member view
    permission as well as the policy's" (G7's list on the expiry side does it,
    points.admin.ExpiryPolicyAdmin.preview_view); the degradation side lists the same
    kind of rows without the check."""
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=101))
    buy(member, "3000", when=now - timedelta(days=100))
    supervisor = django_user_model.objects.create_user("supervisor", is_staff=True)
    freeze_member(
        member=member,
        until=timezone.localdate() + timedelta(days=30),
        reason="Maternity leave",
        by=supervisor,
    )
    policy_only = django_user_model.objects.create_user("policy-only", is_staff=True)
    policy_only.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_degradationpolicy", "change_degradationpolicy"]
        )
    )
    client.force_login(policy_only)
    assert client.get(reverse("admin:members_member_change", args=[member.pk])).status_code == 403

    page = client.post(
        reverse("admin:tiers_degradationpolicy_change", args=[DegradationPolicy.current().pk]),
        {"enabled": "on", "inactivity_days": "90", "levels_per_step": "1"},
    )

    html = page.content.decode()
    assert "Maternity leave" not in html
    assert Member.objects.get(pk=member.pk).external_id not in html
