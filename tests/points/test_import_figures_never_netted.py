"""What an import's page in the CX Manager (Imports) says it does to points: a
transactions file's purchases and returns in two figures, never netted (rules.md,
"Importing transactions": "purchases earned 1,015 points, returns took back 500"); a
members file's opening points and opening lifetime points, each written apart; a
point-grants file's members, and links only to the rows it wrote (grants make ledger
entries, no transactions). And what each file gives beside its rows (tier-up bonuses,
referral and welcome points): the figures add up to what the ledgers gained."""

import re

import pytest
from django.db.models import Sum
from django.urls import reverse

from core.models import ImportBatch
from members.services import enroll_member
from points.models import AwardedOn, LedgerEntry, PointDefinition
from points.services import expire_points
from tests.conftest import at
from tests.points.test_import_batches import HEADER, page, upload

pytestmark = pytest.mark.django_db

# One purchase of 100.00 (100 points at Bronze x1) and its whole return.
NETTED = HEADER + (
    "ZZNET-1,M-00150,purchase,100.00,2026-03-01,,,\n"
    "ZZNET-2,M-00150,return,100.00,2026-03-02,,,ZZNET-1\n"
)
MEMBERS = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,opening_points,"
    "opening_lifetime\nM-00151,ana@example.com,Ana,,,,,100,1200\n"
)
GRANTS = (
    "external_id,member,points,reason,definition\n"
    "G-1,M-00152,50,Parcel late,\nG-2,M-00153,20,Parcel late,\nG-3,M-00152,30,Parcel lost,\n"
)


def figures(shown: str) -> dict[str, str]:
    """The summary table of an import's page, as staff read it: label -> figure."""
    table = re.search(r'<table class="import-summary" id="summary">(.*?)</table>', shown, re.S)
    assert table, "the page shows no summary"
    return dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table.group(1), re.S))


def confirm(client, batch):
    client.post(reverse("admin:core_importbatch_confirm", args=[batch.pk]))


def test_a_transactions_import_shows_what_purchases_earn_and_returns_take_back_apart(
    login, client, make_member, on_commit
):
    # given: a purchase and its whole return, which net to 0
    make_member("M-00150")
    login("Operations")
    on_commit(lambda: upload(client, NETTED))
    batch = ImportBatch.objects.get()

    # then: the check says what each will do, not 0
    checked = figures(page(client, batch))
    assert checked["Points purchases will earn"] == "100"
    assert checked["Points returns will take back"] == "100"
    assert not any("earn and take back" in label for label in checked)

    # and so does the import
    on_commit(lambda: confirm(client, batch))
    done = figures(page(client, batch))
    assert done["Points purchases earned"] == "100"
    assert done["Points returns took back"] == "100"


def test_a_members_import_shows_the_opening_lifetime_points_too(admin_client, tiers, on_commit):
    on_commit(lambda: upload(admin_client, MEMBERS, kind="members"))
    batch = ImportBatch.objects.get()
    checked = figures(page(admin_client, batch))
    assert checked["Opening lifetime points (tier only)"] == "1,200"
    assert checked["Opening points"] == "100"

    on_commit(lambda: confirm(admin_client, batch))
    done = figures(page(admin_client, batch))
    assert (done["Opening points"], done["Opening lifetime points (tier only)"]) == ("100", "1,200")


def test_a_grants_import_counts_its_members_and_links_no_transactions(
    login, client, make_member, on_commit
):
    # given: three grants to two members
    make_member("M-00152"), make_member("M-00153")
    login("Marketer")
    on_commit(lambda: upload(client, GRANTS, kind="grants"))
    batch = ImportBatch.objects.get()
    assert figures(page(client, batch))["Members"] == "2"

    on_commit(lambda: confirm(client, batch))
    shown = page(client, batch)
    assert figures(shown)["Members"] == "2"
    # grants write ledger entries, and name the batch on them: that is their link
    assert "Its ledger entries" in shown
    assert "Its transactions" not in shown


def test_an_import_kept_before_the_figures_were_apart_still_shows_its_net_points(
    login, client, django_user_model
):
    # given: batches kept with their net points only (before the migration)
    agent = login("Operations")
    kept = dict(status="done", rows=2, new=2, uploaded_by=agent, file="imports/old.csv")
    old = ImportBatch.objects.create(kind="transactions", file_name="old.csv", points=-40, **kept)
    old_members = ImportBatch.objects.create(
        kind="members", file_name="members.csv", points=100, **kept
    )
    ImportBatch.objects.filter(pk__in=[old.pk, old_members.pk]).update(
        taken_back=None, lifetime=None
    )
    django_user_model.objects.filter(pk=agent.pk).update(is_superuser=True)

    # then: the net figure, said to be one; no figure the batch never kept
    shown = figures(page(client, old))
    assert shown["Points the rows earn and take back, net (tier-up bonuses apart)"] == "-40"
    assert not any(label.startswith(("Points purchases", "Points returns")) for label in shown)
    shown = figures(page(client, old_members))
    assert shown["Opening points"] == "100"
    assert not any("lifetime" in label for label in shown)


def gained(batch) -> int:
    """What the members' ledgers gained from the batch's entries."""
    return LedgerEntry.objects.filter(batch=batch).aggregate(total=Sum("points"))["total"]


def number(figure: str) -> int:
    return int(figure.replace(",", ""))


def test_a_transactions_import_shows_the_bonuses_and_referrals_it_gives(
    login, client, make_member, on_commit
):
    # given: a friend referred by M-00160 whose first purchase (1,200.00) reaches Silver
    make_member("M-00160")
    enroll_member(external_id="M-00161", email="f@example.com", referred_by="M-00160")
    login("Operations")
    file = HEADER + "ZZREF-1,M-00161,purchase,1200.00,2026-03-01,,,\n"
    on_commit(lambda: upload(client, file))
    batch = ImportBatch.objects.get()
    checked = figures(page(client, batch))

    # when: imported
    on_commit(lambda: confirm(client, batch))
    done = figures(page(client, batch))

    # then: Silver's 100 and the referrer's 200 are said, and the figures are the ledgers'
    assert checked["Points tier-up bonuses and referrals will give"] == "300"
    assert done["Points tier-up bonuses and referrals gave"] == "300"
    assert done["Members"] == "1"  # the file's: the referrer is paid, not in the file
    purchases, returns = done["Points purchases earned"], done["Points returns took back"]
    assert number(purchases) - number(returns) + 300 == gained(batch) == 1500


def test_a_grants_import_shows_what_it_grants_and_takes_away_apart(
    login, client, make_member, on_commit, buy
):
    # given: rules.md's example: +200 tier points that take one member to Silver (its
    # bonus), -250 for another
    PointDefinition.objects.get_or_create(
        handle="goodwill-tier-points",
        defaults=dict(name="Goodwill (tier)", kind="bonus", counts_toward_tier=True),
    )
    buy(make_member("M-00171"), "900")
    buy(make_member("M-00173"), "300")
    login("Marketer")
    file = (
        "external_id,member,points,reason,definition\n"
        "G-1,M-00171,200,Sorry,goodwill-tier-points\nG-2,M-00173,-250,Given twice,\n"
    )
    on_commit(lambda: upload(client, file, kind="grants"))
    batch = ImportBatch.objects.get()
    on_commit(lambda: confirm(client, batch))

    # then: each apart, adding up to what the ledgers gained
    done = figures(page(client, batch))
    assert (done["Points granted"], done["Points taken away"]) == ("200", "250")
    assert done["Points tier-up bonuses gave"] == "100"
    assert 200 - 250 + 100 == gained(batch)


def test_a_members_import_shows_the_welcome_points_it_gives(admin_client, tiers, on_commit):
    PointDefinition.objects.create(
        name="Welcome points",
        handle="welcome",
        kind="action",
        points=50,
        counts_toward_tier=False,
        awarded_on=AwardedOn.ENROLMENT,
    )
    on_commit(lambda: upload(admin_client, MEMBERS, kind="members"))
    batch = ImportBatch.objects.get()
    assert figures(page(admin_client, batch))["Welcome points of the new members"] == "50"

    on_commit(lambda: confirm(admin_client, batch))
    done = figures(page(admin_client, batch))
    assert done["Welcome points of the new members"] == "50"
    assert 100 + 1200 + 50 == gained(batch)  # opening points and lifetime, welcome


def test_a_late_return_shows_what_the_expiry_gives_back_and_the_figures_add_up(
    login, client, make_member, buy, monthly, on_commit
):
    # given 100 bought on 5 Jan, expired at the 31 Jan cutoff
    member = make_member("M-00154")
    buy(member, "100", when=at("2026-01-05"), external_id="ZZLATE-1")
    expire_points(now=at("2026-02-01", 1))

    # when a file returns it, dated 20 Jan
    login("Operations")
    late = HEADER + "ZZLATE-2,M-00154,return,100.00,2026-01-20,,,ZZLATE-1\n"
    on_commit(lambda: upload(client, late))
    batch = ImportBatch.objects.get()
    checked = figures(page(client, batch))
    assert checked["Points returns will take back"] == "100"
    assert checked["Points expiry will give back to returns dated before it"] == "100"

    # then the figures shown add up to what the ledger gained: nothing
    on_commit(lambda: confirm(client, batch))
    done = figures(page(client, batch))
    assert done["Points expiry gave back to returns dated before it"] == "100"
    written = LedgerEntry.objects.filter(member=member, transaction__external_id="ZZLATE-2")
    assert written.aggregate(total=Sum("points"))["total"] == -100 + 100
    member.refresh_from_db()
    assert member.points_balance == 0
