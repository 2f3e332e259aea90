"""Point grants: a file of manual adjustments (P6 per row), all or nothing, idempotent
on external_id, attributed to the staff user who uploads it."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from core.models import ImportBatch
from members.models import Member, Notification, TierChange
from members.services import erase_member
from points.grant_rows import read_grants
from points.models import LedgerEntry, PointDefinition
from points.services import adjust_points, import_grants
from tests.conftest import at, definition, postgres_only, run_together, summary

pytestmark = pytest.mark.django_db
HEADER = "external_id,member,points,reason,definition\n"
NOW = at("2026-03-10")


def grant(text, *, by, dry_run=False, header=HEADER, bom=False, batch=None):
    data = (("\ufeff" if bom else "") + header + text).encode()
    rows, errors = read_grants(io.BytesIO(data))
    return import_grants(rows, by=by, errors=errors, dry_run=dry_run, batch=batch, now=NOW)


def state():
    return (
        LedgerEntry.objects.count(),
        list(Member.objects.order_by("pk").values_list("points_balance", "lifetime_points")),
    )


def available(member):
    return summary(member, now=NOW)["available"]


@pytest.fixture
def marketer(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    return user


def test_grants_are_available_at_once_and_by_default_do_not_count_toward_the_tier(
    alice, bob, staff
):
    # when
    report = grant("G-1,M-0001,250,Damaged parcel,\nG-2,M-0002,40,Late delivery,\n", by=staff)

    # then
    assert (report.new, report.skipped, report.errors, report.points) == (2, 0, [], 290)
    assert (available(alice), available(bob)) == (250, 40)
    assert summary(alice)["lifetime"] == 0
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert (entry.kind, entry.points, entry.definition.handle, entry.member) == (
        "adjustment",
        250,
        "manual-adjustment",
        alice,
    )
    call_command("check_ledger")


def test_grants_are_attributed_to_the_uploader(alice, staff):
    # when
    grant("G-1,M-0001,250,  Damaged parcel  ,\n", by=staff)

    # then
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert (entry.created_by, entry.reason, entry.issued_at, entry.accrue_at) == (
        staff,
        "Damaged parcel",
        NOW,
        NOW,
    )


def test_grants_need_a_staff_user(alice, django_user_model):
    customer = django_user_model.objects.create_user("customer")
    with pytest.raises(ValidationError, match="not a staff user"):
        grant("G-1,M-0001,250,Goodwill,\n", by=customer)
    with pytest.raises(ValidationError, match="must name the staff user"):
        grant("G-1,M-0001,250,Goodwill,\n", by=None)
    assert not LedgerEntry.objects.exists()


def test_a_file_with_a_bad_row_grants_nothing_and_names_every_bad_row(alice, bob, staff, settings):
    # given
    settings.MAX_ADJUSTMENT_POINTS = 10_000
    adjust_points(member=bob, points=100, reason="Welcome", by=staff, now=at("2026-03-01"))
    before = state()

    # when
    report = grant(
        "G-1,M-0001,250,Goodwill,\n"
        "G-2,M-9999,250,Goodwill,\n"
        "G-3,M-0001,0,Goodwill,\n"
        "G-4,M-0001,ten,Goodwill,\n"
        "G-5,M-0001,10001,Goodwill,\n"
        "G-6,M-0001,5,   ,\n"
        "G-7,M-0001,5,Goodwill,no-such-thing\n"
        "G-8,M-0002,-101,Typo,\n"
        ",M-0001,5,Goodwill,\n"
        "G-9,M-0001,1.5,,\n"
        f"G-10,M-0001,{'9' * 5000},Goodwill,\n",
        by=staff,
    )

    # then
    assert [str(e) for e in report.errors] == [
        "line 3, member: no member with customer code 'M-9999'",
        "line 4, points: Give a whole number of points other than zero",
        "line 5, points: 'ten' is not a whole number of points",
        "line 6, points: At most 10,000 points can be added or removed in one adjustment, "
        "not 10,001",
        "line 7, reason: Say why the points are adjusted",
        "line 8, definition: no definition 'no-such-thing'",
        "line 9, points: Cannot remove 101 points: M-0002 has only 100 available",
        "line 10, external_id: an id of 1 to 100 characters is required",
        "line 11, points: '1.5' is not a whole number of points",
        "line 11, reason: Say why the points are adjusted",
        "line 12, points: 999999999999… (5,000 digits) is more than any limit allows",
    ]
    assert (report.new, report.points) == (0, 0)
    assert state() == before


def test_a_quote_left_open_is_named_and_grants_nothing(alice, bob, staff):
    """A reason's quote left open took the rows below it into that reason: the file was
    "checked" with one row of three, and confirming granted 10 points of 120 without a
    word (found by an audit)."""
    before = state()

    report = grant(
        'G-1,M-0001,10,"Apology for parcel,\nG-2,M-0002,50,Second,\nG-3,M-0001,60,Third,\n',
        by=staff,
    )

    assert [str(e) for e in report.errors] == [
        "line 2, row: a quote opened on this line is never closed: every line below it "
        "would be read as one cell. Close the quote, or write the text without it"
    ]
    assert (report.new, report.points) == (0, 0)
    assert state() == before


def test_text_after_a_closing_quote_is_named_not_run_into_it(alice, staff):
    report = grant('G-1,M-0001,10,"Apology" for parcel,\n', by=staff)

    assert [str(e) for e in report.errors] == [
        "line 2, row: text after a closing quote: inside quoted text write a quote as two "
        '("12"" screen"), and put nothing between the closing quote and the comma'
    ]


def test_the_command_names_bad_rows_on_stderr_and_ends_with_the_counts(
    alice, marketer, tmp_path, capsys
):
    # given
    path = tmp_path / "grants.csv"
    path.write_text(HEADER + "G-1,M-0001,250,Goodwill,\nG-2,M-0404,5,Goodwill,\n")

    # when
    with pytest.raises(SystemExit) as exit_:
        call_command("import_grants", str(path), "--by", "marketer")

    # then
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert "line 3, member: no member with customer code 'M-0404'" in captured.err
    assert captured.out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"
    assert not LedgerEntry.objects.exists()

    # when the file is corrected: a dry run writes nothing, then the import grants
    path.write_text(HEADER + "G-1,M-0001,250,Goodwill,\n")
    call_command("import_grants", str(path), "--by", "marketer", "--dry-run")
    assert "would grant 250 points and would take 0 away" in capsys.readouterr().out
    assert not LedgerEntry.objects.exists()
    call_command("import_grants", str(path), "--by", "marketer")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 skipped=0 errors=0"
    call_command("import_grants", str(path), "--by", "marketer")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 skipped=1 errors=0"
    assert LedgerEntry.objects.get().created_by == marketer


def test_the_command_says_what_it_granted_and_took_away_apart_never_netted(
    alice, bob, marketer, tmp_path, capsys
):
    """rules.md: an import's figures are never netted; a file that gives 200 and takes
    400 away did not "grant -200"."""
    adjust_points(member=bob, points=400, reason="Opening", by=marketer, now=NOW)
    path = tmp_path / "grants.csv"
    path.write_text(HEADER + "G-1,M-0001,200,Goodwill,\nG-2,M-0002,-400,Given twice,\n")

    call_command("import_grants", str(path), "--by", "marketer")

    said = capsys.readouterr().out.strip().splitlines()
    assert said[-2].startswith("2 rows: granted 200 points and took 400 away, ")
    assert said[-1] == "new=2 skipped=0 errors=0"


@pytest.mark.parametrize(
    "username, message",
    [
        ("nobody", "No user 'nobody'"),
        ("customer", "customer is not a staff user"),
        ("agent", "agent may not import point grants"),
    ],
)
def test_the_command_refuses_an_unknown_or_non_staff_user(
    alice, staff, django_user_model, tmp_path, username, message
):
    django_user_model.objects.create_user("customer")
    path = tmp_path / "grants.csv"
    path.write_text(HEADER + "G-1,M-0001,250,Goodwill,\n")
    with pytest.raises(CommandError, match=message):
        call_command("import_grants", str(path), "--by", username)
    assert not LedgerEntry.objects.exists()


def test_the_same_file_twice_grants_nothing_new(alice, bob, staff):
    # given
    text = "G-1,M-0001,250,Goodwill,\nG-2,M-0002,40,Late delivery,\n"
    grant(text, by=staff)
    before = state()

    # when
    report = grant(text, by=staff)

    # then
    assert (report.new, report.skipped, report.errors) == (0, 2, [])
    assert state() == before
    assert available(alice) == 250


def test_the_same_external_id_with_other_content_is_an_error_naming_the_row(alice, staff):
    # given
    grant("G-1,M-0001,250,Goodwill,\n", by=staff)
    before = state()

    # when
    report = grant("G-2,M-0001,10,Goodwill,\nG-1,M-0001,300,Goodwill,\n", by=staff)

    # then
    assert [str(e) for e in report.errors] == [
        "line 3, external_id: G-1 was already imported with other content"
    ]
    assert state() == before


def test_a_duplicate_external_id_in_the_file_names_the_first_line(alice, staff):
    report = grant("G-1,M-0001,250,Goodwill,\nG-1,M-0001,250,Goodwill,\n", by=staff)
    assert [str(e) for e in report.errors] == ["line 3, external_id: duplicate of line 2"]
    assert not LedgerEntry.objects.exists()


def test_a_row_repeating_the_id_of_a_bad_row_is_listed_in_the_same_run(alice, staff):
    report = grant("G-1,M-0001,lots,Goodwill,\nG-1,M-0001,250,Goodwill,\n", by=staff)
    assert [(e.line, e.column) for e in report.errors] == [(2, "points"), (3, "external_id")]
    assert str(report.errors[1]) == "line 3, external_id: duplicate of line 2"
    assert not LedgerEntry.objects.exists()


def test_a_negative_grant_may_not_take_the_balance_below_zero(alice, bob, staff, buy):
    # given: 100 points available to each
    buy(alice, "100", when=at("2026-03-01"))
    buy(bob, "100", when=at("2026-03-01"))
    before = state()

    # when: rows of one member apply in file order
    refused = grant("G-1,M-0001,-60,Typo,\nG-2,M-0001,-50,Typo,\n", by=staff)

    # then
    assert [str(e) for e in refused.errors] == [
        "line 3, points: Cannot remove 50 points: M-0001 has only 40 available"
    ]
    assert state() == before

    # when a grant before it gives the points back
    report = grant("G-1,M-0002,50,Welcome,\nG-2,M-0002,-150,Typo,\n", by=staff)

    # then
    assert report.errors == [] and available(bob) == 0


def test_pending_points_cannot_be_taken_by_a_negative_grant(alice, staff, buy):
    # given: 100 points pending for 30 days, 20 available
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=30)
    buy(alice, "100", when=at("2026-03-05"))
    adjust_points(member=alice, points=20, reason="Welcome", by=staff, now=at("2026-03-06"))

    # when
    report = grant("G-1,M-0001,-21,Typo,\n", by=staff)

    # then
    assert [str(e) for e in report.errors] == [
        "line 2, points: Cannot remove 21 points: M-0001 has only 20 available"
    ]
    assert grant("G-1,M-0001,-20,Typo,\n", by=staff).new == 1


def test_a_tier_counting_grant_raises_the_tier_once(alice, staff):
    # when: up to Silver, down again, up again in one file
    report = grant(
        "G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n"
        "G-2,M-0001,-500,Typo,goodwill-tier-points\n"
        "G-3,M-0001,600,Missed purchase,goodwill-tier-points\n",
        by=staff,
    )

    # then: Silver, with its tier-up bonus (100) paid once, attributed to the uploader
    assert report.errors == [] and report.tier_changes == 1
    s = summary(alice)
    assert (s["qualified_tier"].code, s["lifetime"], s["available"]) == ("silver", 1300, 1400)
    bonus = LedgerEntry.objects.get(member=alice, kind="bonus")
    assert (bonus.points, bonus.created_by, bonus.external_id) == (100, staff, None)
    changes = TierChange.objects.filter(member=alice).exclude(reason="joined").order_by("pk")
    assert [(c.reason, c.created_by) for c in changes] == [("manual", staff)] * 3
    assert Notification.objects.filter(member=alice, kind="tier_up").count() == 1
    call_command("check_ledger")


def test_a_definition_named_in_another_case_is_that_definition(alice, staff):
    """An uploader types the handle as it reads ("Goodwill-Tier-Points"): handles are
    unique whatever their case, so the row grants by goodwill-tier-points, and the
    same file with the handle's own case grants nothing more."""
    # when
    first = grant("G-1,M-0001,1200,Missed purchase,Goodwill-Tier-Points\n", by=staff)
    again = grant("G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n", by=staff)

    # then: tier-counting, Silver with its bonus, granted once
    assert (first.new, first.errors) == (1, [])
    assert (again.new, again.skipped, again.errors) == (0, 1, [])
    s = summary(alice)
    assert (s["qualified_tier"].code, s["lifetime"], s["available"]) == ("silver", 1200, 1300)
    entry = LedgerEntry.objects.get(external_id="G-1")
    assert entry.definition == definition("goodwill-tier-points")


@pytest.mark.parametrize(
    "handle, column, message",
    [
        ("purchase-points", "definition", "Purchase points is earned by purchases"),
        ("tier-up-bonus", "definition", "Tier-up bonus is written by the programme itself"),
        ("opening-balance", "definition", "Opening balance is written by the programme itself"),
        ("switched-off", "definition", "Old goodwill is switched off"),
        ("refer", "points", "Refer a friend is worth 200 points"),
    ],
)
def test_the_definition_must_be_a_bonus_or_action_definition(alice, staff, handle, column, message):
    # given
    PointDefinition.objects.create(name="Old goodwill", handle="switched-off", kind="bonus")
    PointDefinition.objects.filter(handle="switched-off").update(is_active=False)
    PointDefinition.objects.create(name="Refer a friend", handle="refer", kind="action", points=200)

    # when
    report = grant(f"G-1,M-0001,250,Goodwill,{handle}\n", by=staff)

    # then
    assert [(e.line, e.column) for e in report.errors] == [(2, column)]
    assert message in report.errors[0].reason
    assert not LedgerEntry.objects.exists()

    # and adjust_points, which shares the rule, refuses it too
    with pytest.raises(ValidationError, match=message):
        adjust_points(member=alice, points=250, reason="x", by=staff, definition=definition(handle))


def test_an_action_definition_gives_exactly_its_points(alice, staff):
    PointDefinition.objects.create(name="Refer a friend", handle="refer", kind="action", points=200)
    report = grant("G-1,M-0001,200,Referral,refer\nG-2,M-0001,-200,Wrong friend,refer\n", by=staff)
    assert report.new == 2 and available(alice) == 0


def test_a_bom_and_a_file_without_the_definition_column_are_accepted(alice, staff):
    report = grant(
        "G-1,M-0001,+250,Goodwill\n",
        by=staff,
        header="external_id,member,points,reason\n",
        bom=True,
    )
    assert report.errors == [] and available(alice) == 250


def test_a_missing_column_is_reported(staff):
    rows, errors = read_grants(io.BytesIO(b"external_id,member,definition\nG-1,M-1,x\n"))
    assert [str(e) for e in errors] == [
        "line 1, points: missing column",
        "line 1, reason: missing column",
    ]


def test_every_entry_names_the_batch(alice, staff):
    batch = ImportBatch.objects.create(
        kind="grants", file="imports/g.csv", file_name="g.csv", uploaded_by=staff
    )
    grant("G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n", by=staff, batch=batch)
    assert sorted(batch.entries.values_list("kind", flat=True)) == ["adjustment", "bonus"]


def test_dry_run_computes_everything_and_writes_nothing(alice, staff):
    before = state()
    report = grant("G-1,M-0001,1200,Missed purchase,goodwill-tier-points\n", by=staff, dry_run=True)
    assert (report.new, report.points, report.tier_changes) == (1, 1200, 1)
    assert state() == before
    assert not TierChange.objects.filter(member=alice).exclude(reason="joined").exists()


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_file_uploaded_twice_at_once_grants_once(make_member, staff):
    # given
    for n in range(5):
        make_member(f"M-{n:04d}")
    text = "".join(f"G-{i},M-{i % 5:04d},10,Goodwill,\n" for i in range(40))

    # when
    reports = run_together(2, lambda i: grant(text, by=staff))

    # then: one grants, the other waits for its locks, then skips
    assert sorted((r.new, r.skipped) for r in reports) == [(0, 40), (40, 0)]
    assert LedgerEntry.objects.filter(kind="adjustment").count() == 40
    call_command("check_ledger")


def test_the_example_of_the_rules_a_grant_to_gold_then_a_correction(make_member, staff):
    # given: M-00042 is Silver with 2,900 lifetime points and 320 available
    m42, m77 = make_member("M-00042"), make_member("M-00077")
    counting = definition("goodwill-tier-points")
    adjust_points(member=m42, points=2900, reason="x", by=staff, definition=counting, now=NOW)
    adjust_points(member=m42, points=-2680, reason="x", by=staff, now=NOW)  # 3,000 with the bonus
    assert (available(m42), summary(m42)["qualified_tier"].code) == (320, "silver")
    rows = (
        "SPRING-1,M-00042,150,Spring apology campaign,goodwill-tier-points\n"
        "SPRING-2,M-00042,{points},Points given twice in March,\n"
        "SPRING-3,M-00077,50,Spring apology campaign,\n"
    )

    # when / then: the correction is more than the first row and the Gold bonus leave
    refused = grant(rows.format(points=-800), by=staff)
    assert [str(e) for e in refused.errors] == [
        "line 3, points: Cannot remove 800 points: M-00042 has only 720 available"
    ]

    # when / then: a smaller one is granted
    assert grant(rows.format(points=-400), by=staff).new == 3
    s = summary(m42, now=NOW)
    assert (s["qualified_tier"].code, s["available"], s["lifetime"]) == ("gold", 320, 3050)
    assert available(m77) == 50
    assert grant(rows.format(points=-400), by=staff).skipped == 3


@pytest.mark.parametrize("key", ["enrolment:", "referral:", "opening-points:", "opening-lifetime:"])
def test_a_grant_id_may_not_take_a_key_the_programme_writes_for_itself(alice, staff, key):
    # (welcome and referral points, opening balances: a grant holding one would block
    # the member's own, and the till's purchase paying a referral would fail)
    before = state()
    report = grant(f"{key}{alice.pk + 1},M-0001,10,Spring apology,\n", by=staff)
    assert [str(e) for e in report.errors] == [
        "line 2, external_id: ids starting enrolment:, referral:, opening-points:, "
        "opening-lifetime: are the programme's own"
    ]
    assert state() == before


def test_a_grants_file_resent_after_a_member_was_erased_reports_their_rows_as_already_imported(
    alice, bob, staff
):
    # given a grants file imported once, then one of its members erased
    rows = "G-1,M-0001,250,Damaged parcel,\nG-2,M-0002,40,Late delivery,\n"
    grant(rows, by=staff)
    erase_member(member=bob, by=staff)
    before = state()

    # when the same file is sent again
    report = grant(rows, by=staff)

    # then both rows are already imported: skipped, nothing written
    assert (report.new, report.skipped, report.errors) == (0, 2, [])
    assert state() == before


def test_a_resent_grant_of_an_erased_member_with_other_points_is_an_error(alice, bob, staff):
    grant("G-2,M-0002,40,Late delivery,\n", by=staff)
    erase_member(member=bob, by=staff)
    before = state()

    report = grant("G-2,M-0002,45,Late delivery,\n", by=staff)

    assert [str(error) for error in report.errors] == [
        "line 2, external_id: G-2 was already imported with other content"
    ]
    assert state() == before


def test_a_new_grant_for_an_erased_code_names_no_member(alice, bob, staff):
    code = bob.external_id
    erase_member(member=bob, by=staff)

    report = grant(f"G-9,{code},40,Late delivery,\n", by=staff)

    assert [str(error) for error in report.errors] == [
        f"line 2, member: no member with customer code {code!r}"
    ]


def test_a_grant_wrong_in_another_cell_is_also_checked_for_an_unknown_member(alice, staff):
    before = state()
    report = grant("G-1,M-9999,ten,Goodwill,\nG-2,M-0001,ten,Goodwill,\n", by=staff)

    assert [str(e) for e in report.errors] == [
        "line 2, member: no member with customer code 'M-9999'",
        "line 2, points: 'ten' is not a whole number of points",
        "line 3, points: 'ten' is not a whole number of points",
    ]
    assert state() == before


def test_points_are_not_given_to_an_erased_account_by_a_file_or_by_hand(alice, bob, staff):
    """Found by an audit: a grants row naming an erased account ("ERASED-...") granted
    points nobody could ever use, which stayed in the outstanding points for good."""
    # given: bob erased, with 40 points
    grant("G-1,M-0002,40,Late delivery,\n", by=staff)
    erased = erase_member(member=bob, by=staff)
    before = state()

    # when: a file gives it 100 points, and an agent gives it 5
    report = grant(f"G-2,{erased.external_id},100,Goodwill,\n", by=staff)
    with pytest.raises(ValidationError) as by_hand:
        adjust_points(member=erased, points=5, reason="Goodwill", by=staff, now=NOW)

    # then: both refused, saying why; nothing written
    said = (
        f"{erased.external_id} was erased at the customer's request: it receives no more "
        "points, which could never be used"
    )
    assert [str(error) for error in report.errors] == [f"line 2, points: {said}"]
    assert by_hand.value.message_dict == {"points": [f"{said}."]}
    assert state() == before
    # and its balance can still be written off
    adjust_points(member=erased, points=-40, reason="Written off", by=staff, now=NOW)
    assert available(erased) == 0
