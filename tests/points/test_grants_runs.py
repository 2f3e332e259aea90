"""A grants file as a whole, all or nothing and idempotent on external_id: through
the command, sent again or twice at once, as a dry run, as a batch."""

import pytest
from django.core.management import CommandError, call_command

from core.models import ImportBatch
from members.models import TierChange
from points.models import LedgerEntry
from points.services import adjust_points
from tests.conftest import postgres_only, run_together
from tests.points.grant_files import HEADER, NOW, available, grant, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    return user


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
