"""Governance of manual points: goodwill limits per staff group, requests above them,
approval by another CX supervisor, applied once."""

import io
import threading
import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from members.models import Member
from members.services import merge_members
from points.grant_rows import read_grants
from points.models import AdjustmentLimit, AdjustmentRequest, LedgerEntry, PointDefinition
from points.services import goodwill, import_grants
from points.services.goodwill import (
    adjust_or_request,
    approve_request,
    given_this_month,
    limits_for,
    reject_request,
)
from tests.conftest import at, local_time, postgres_only, run_together, summary

pytestmark = pytest.mark.django_db
MADRID = ZoneInfo("Europe/Madrid")
NOW = at("2026-03-10")


@pytest.fixture
def limits(db):
    """CX agents give up to 1,000 points at a time and 5,000 a month; supervisors
    10,000 and 100,000."""
    agent = AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX agent"), per_adjustment=1000, per_month=5000
    )
    supervisor = AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX supervisor"), per_adjustment=10000, per_month=100000
    )
    return agent, supervisor


@pytest.fixture
def user_in(django_user_model):
    def make(name, *groups, **extra):
        user = django_user_model.objects.create_user(name, is_staff=True, **extra)
        user.groups.add(*Group.objects.filter(name__in=groups))
        return user

    return make


@pytest.fixture
def maria(user_in):
    return user_in("maria", "CX agent")


@pytest.fixture
def sam(user_in):
    return user_in("sam", "CX agent", "CX supervisor")


def give(member, points, by, now=NOW, reason="Parcel arrived damaged"):
    return adjust_or_request(member=member, points=points, reason=reason, by=by, now=now)


def available(member):
    return summary(member)["available"]


def test_G1_adjustment_within_the_group_limit_is_given_at_once(member, maria, limits):
    # given / when
    made = give(member, 1000, maria)
    # then
    assert isinstance(made, LedgerEntry)
    assert available(member) == 1000


def test_G2_adjustment_above_the_limit_per_adjustment_becomes_a_request(member, maria, limits):
    # when
    made = give(member, 1500, maria)
    # then
    assert isinstance(made, AdjustmentRequest)
    assert made.status == "pending"
    assert made.above == "above the limit of 1,000 points per adjustment"
    assert available(member) == 0
    assert not LedgerEntry.objects.filter(member=member).exclude(kind="bonus").exists()


def test_an_erasure_rejects_the_requests_waiting_for_the_member_and_a_new_one_is_refused(
    member, maria, limits, staff
):
    """Found by an audit: a request waiting when the member was erased stayed in the
    queue, and approving it was refused ("ERASED-...: ERASED-... was erased ...")."""
    from members.services import erase_member

    # given: 1,500 points waiting for a supervisor
    waiting = give(member, 1500, maria)

    # when the member is erased at their request
    erased = erase_member(member=member, by=staff)

    # then the request is rejected, saying why; and no other can be made
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decision_reason) == (
        "rejected",
        "The member was erased at their request: their points can never be used.",
    )
    with pytest.raises(ValidationError, match="receives no more points, which could never be used"):
        give(erased, 1500, maria)
    assert available(erased) == 0


def test_G2_adjustments_above_the_monthly_limit_become_requests(member, maria, limits):
    # given: 4,500 given in March
    for _ in range(5):
        give(member, 900, maria)
    # when
    made = give(member, 600, maria)
    # then
    assert isinstance(made, AdjustmentRequest)
    assert (
        made.above == "above the monthly limit of 5,000 points (4,500 already given in March 2026)"
    )
    assert isinstance(give(member, 500, maria), LedgerEntry)  # exactly 5,000


def test_points_taken_back_do_not_free_the_monthly_limit(member, maria, limits):
    """Found by mutation: the month counts positive adjustments; taking points back
    frees none of it."""
    for _ in range(5):
        give(member, 900, maria)  # 4,500 of the 5,000
    give(member, -600, maria)
    assert isinstance(give(member, 600, maria), AdjustmentRequest)  # 5,100 given
    assert available(member) == 3900


def test_an_approved_request_does_not_use_the_requesters_monthly_limit(member, maria, sam, limits):
    """Found by mutation: points a supervisor approved were not given on the agent's own
    authority, and leave the agent's month as it was."""
    approved = approve_request(request=give(member, 1500, maria), by=sam, now=NOW)
    made = [give(member, 900, maria) for _ in range(5)]  # 4,500 of the 5,000
    assert all(isinstance(entry, LedgerEntry) for entry in made)
    assert available(member) == 6000
    assert approved.entry.issued_at == approved.decided_at == NOW  # given when approved


def test_months_are_calendar_months_in_the_programme_time_zone(member, maria, limits):
    # given: 4,500 given in March in Madrid
    march_end = local_time("2026-03-31 23:30")  # 21:30 UTC
    for _ in range(5):
        give(member, 900, maria, now=march_end)
    april_start = local_time("2026-04-01 00:30")  # 22:30 UTC on 31 March
    # then
    assert isinstance(give(member, 600, maria, now=march_end), AdjustmentRequest)
    assert given_this_month(maria, april_start) == 0
    assert isinstance(give(member, 600, maria, now=april_start), LedgerEntry)


def test_removing_points_is_never_limited(member, maria, limits, user_in):
    # given
    boss = user_in("boss", is_superuser=True)
    adjust_or_request(member=member, points=5000, reason="Migration", by=boss, now=NOW)
    # when
    made = give(member, -3000, maria, now=at("2026-03-11"), reason="Given twice")
    # then
    assert isinstance(made, LedgerEntry)
    assert available(member) == 2000


def test_superusers_have_no_limit(member, user_in, limits):
    boss = user_in("boss", is_superuser=True)
    assert limits_for(boss) is None
    assert isinstance(give(member, 50000, boss), LedgerEntry)


def test_G1_a_user_in_several_limited_groups_has_the_most_generous_limit(sam, limits):
    assert (limits_for(sam).per_adjustment, limits_for(sam).per_month) == (10000, 100000)


def test_staff_in_no_limited_group_have_the_strictest_limit(member, user_in, limits):
    # given: a staff user given "assign points" directly, in no group with a limit
    loner = user_in("loner", "Operations")
    # then
    assert (limits_for(loner).per_adjustment, limits_for(loner).per_month) == (1000, 5000)
    assert isinstance(give(member, 1001, loner), AdjustmentRequest)


def test_without_any_limit_configured_adjustments_are_not_limited(member, maria):
    assert limits_for(maria) is None
    assert isinstance(give(member, 50000, maria), LedgerEntry)


def test_a_supervisor_approves_a_request_and_the_points_are_given_in_the_givers_name(
    member, maria, sam, limits
):
    # given
    made = give(member, 3000, maria)
    # when
    approved = approve_request(request=made, by=sam, reason="Long-standing customer")
    # then
    assert approved.status == "approved" and approved.decided_by == sam
    assert available(member) == 3000
    entry = approved.entry
    assert (entry.points, entry.created_by, entry.reason) == (3000, maria, "Parcel arrived damaged")


def test_a_request_above_the_approvers_own_limit_waits_for_one_whose_limit_covers_it(
    member, maria, sam, user_in, limits
):
    # given: 50,000 asked by an agent; sam may give 10,000 in one adjustment
    made = give(member, 50_000, maria)

    # when: sam approves; then nothing is given, and the request still waits
    with pytest.raises(ValidationError, match="50,000 points is above your own limit of 10,000"):
        approve_request(request=made, by=sam)
    made.refresh_from_db()
    assert (made.status, available(member)) == ("pending", 0)

    # a superuser (no limit) approves it
    boss = user_in("boss", is_superuser=True)
    assert approve_request(request=made, by=boss).status == "approved"
    assert available(member) == 50_000


def test_a_request_is_approved_after_its_giver_left_the_staff(member, maria, sam, limits):
    # given: maria asked for 3,000 points, then left the company (no longer staff)
    made = give(member, 3000, maria)
    type(maria).objects.filter(pk=maria.pk).update(is_staff=False)
    # when: a supervisor approves what she asked while she was staff
    approved = approve_request(request=AdjustmentRequest.objects.get(pk=made.pk), by=sam)
    # then: the customer gets the points, in the name of the agent who asked
    assert approved.status == "approved"
    assert available(member) == 3000
    assert approved.entry.created_by == maria


def test_approving_twice_applies_once(member, maria, sam, user_in, limits):
    # given
    other = user_in("ana", "CX supervisor")
    made = give(member, 3000, maria)
    approve_request(request=made, by=sam)
    # when
    with pytest.raises(ValidationError) as refused:
        approve_request(request=made, by=other)
    # then
    assert "already approved by sam" in refused.value.messages[0]
    assert available(member) == 3000


def test_nobody_approves_their_own_request(member, sam, limits):
    # given: a supervisor above their own limit
    made = give(member, 20000, sam)
    # when / then
    with pytest.raises(ValidationError, match="You sent this request"):
        approve_request(request=made, by=sam)
    with pytest.raises(ValidationError, match="You sent this request"):
        reject_request(request=made, by=sam, reason="No")
    assert AdjustmentRequest.objects.get(pk=made.pk).status == "pending"


def test_only_users_with_the_approve_permission_decide(member, maria, user_in, limits):
    made = give(member, 3000, maria)
    colleague = user_in("pablo", "CX agent")
    with pytest.raises(PermissionDenied):
        approve_request(request=made, by=colleague)
    assert available(member) == 0


def test_a_rejection_needs_a_reason_and_gives_nothing(member, maria, sam, limits):
    # given
    made = give(member, 3000, maria)
    # when
    with pytest.raises(ValidationError, match="Say why the request is rejected"):
        reject_request(request=made, by=sam, reason=" ")
    rejected = reject_request(request=made, by=sam, reason="Goodwill already given last week")
    # then
    assert (rejected.status, rejected.decision_reason) == (
        "rejected",
        "Goodwill already given last week",
    )
    assert available(member) == 0
    with pytest.raises(ValidationError, match="already rejected by sam") as refused:
        approve_request(request=made, by=sam)
    assert refused.value.messages[0].endswith(": no point was given, nor is any now.")
    assert available(member) == 0


def test_approved_requests_do_not_count_in_the_givers_month(member, maria, sam, limits):
    # given
    approve_request(request=give(member, 3000, maria), by=sam)
    # then: only what maria gave on her own authority counts
    assert given_this_month(maria, NOW) == 0
    assert isinstance(give(member, 1000, maria), LedgerEntry)


def test_an_approval_the_ledger_refuses_leaves_the_request_pending(member, maria, sam, limits):
    # given: the definition of the request was switched off before the supervisor looked
    made = give(member, 3000, maria)
    PointDefinition.objects.filter(pk=made.definition_id).update(is_active=False)
    # when
    with pytest.raises(ValidationError, match="is switched off"):
        approve_request(request=AdjustmentRequest.objects.get(pk=made.pk), by=sam)
    # then
    assert AdjustmentRequest.objects.get(pk=made.pk).status == "pending"
    assert available(member) == 0


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_approving_while_the_member_is_merged_neither_deadlocks_nor_fails(
    make_member, maria, sam, staff, limits, monkeypatch
):
    # given a waiting request of an account, whose approval is slow to write its points
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    made = give(old, 3000, maria)
    decided, adjust = threading.Event(), goodwill.adjust_points

    def slowly(**kwargs):
        decided.set()  # the request is decided (its row locked)
        clock.sleep(1)  # the merge starts meanwhile
        return adjust(**kwargs)

    monkeypatch.setattr(goodwill, "adjust_points", slowly)

    # when an agent merges the account into another while a supervisor approves
    def work(i):
        if i == 0:
            return approve_request(request=AdjustmentRequest.objects.get(pk=made.pk), by=sam)
        decided.wait(10)
        return merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")

    approved, merged = run_together(2, work)

    # then both are made, one after the other: the points end on the account kept
    assert isinstance(approved, AdjustmentRequest), approved
    assert isinstance(merged, Member), merged
    assert summary(keep)["available"] == 3000
    call_command("check_ledger")


HEADER = "external_id,member,points,reason,definition\n"


def grant(text, *, by):
    rows, errors = read_grants(io.BytesIO((HEADER + text).encode()))
    return import_grants(rows, by=by, errors=errors, now=NOW)


def test_G4_a_grants_file_with_a_row_above_the_limit_grants_nothing_and_names_the_row(
    member, maria, limits
):
    # when
    report = grant(
        f"G-1,{member.external_id},500,Outage,\nG-2,{member.external_id},1500,Outage,\n", by=maria
    )
    # then
    assert [(e.line, e.column) for e in report.errors] == [(3, "points")]
    assert (
        "1,500 points is above the limit of 1,000 points per adjustment" in report.errors[0].reason
    )
    assert report.errors[0].reason.endswith(
        "for the uploader: ask a CX supervisor to import the file"
    )
    assert available(member) == 0


def test_G4_a_grants_file_above_an_agents_limit_is_imported_by_a_supervisor_as_it_says(
    tmp_path, member, user_in, limits
):
    # given a file refused for a marketer (limited as strictly as an agent), who is
    # told to ask a supervisor
    from django.core.management import call_command

    grants = tmp_path / "grants.csv"
    grants.write_text(f"{HEADER}G-1,{member.external_id},1500,Outage,\n")
    user_in("mara", "Marketer")
    refused = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "import_grants", str(grants), "--by", "mara", stdout=io.StringIO(), stderr=refused
        )
    assert "ask a CX supervisor to import the file" in refused.getvalue()

    # when a CX supervisor (and nothing else) imports it
    user_in("sam", "CX supervisor")
    out = io.StringIO()
    call_command("import_grants", str(grants), "--by", "sam", stdout=out)

    # then it is granted, in the supervisor's name
    assert out.getvalue().strip().endswith("new=1 skipped=0 errors=0")
    assert available(member) == 1500
    assert LedgerEntry.objects.get(member=member, kind="adjustment").created_by.username == "sam"


def test_G4_a_grants_file_above_the_monthly_limit_grants_nothing(member, maria, sam, limits):
    # given: 4,000 given by hand this month
    for _ in range(4):
        give(member, 1000, maria)
    rows = "".join(f"G-{i},{member.external_id},400,Outage,\n" for i in range(4))
    # when
    refused = grant(rows, by=maria)
    # then: the third row takes maria to 5,200
    assert [e.line for e in refused.errors] == [4, 5]
    assert refused.errors[0].reason == (
        "400 points is above the monthly limit of 5,000 points (4,000 given in March 2026 "
        "before this file, 800 by its rows above) for the uploader: ask a CX supervisor to "
        "import the file"
    )
    assert available(member) == 4000
    # and a supervisor's limits cover it
    assert grant(rows, by=sam).new == 4


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_supervisors_approving_at_once_apply_once(make_member, user_in, limits):
    # given
    member = make_member()
    maria = user_in("maria", "CX agent")
    supervisors = [user_in(f"sup{i}", "CX supervisor") for i in range(2)]
    made = give(member, 3000, maria)
    # when
    results = run_together(2, lambda i: approve_request(request=made, by=supervisors[i]))
    # then
    assert sum(isinstance(r, AdjustmentRequest) for r in results) == 1
    assert sum(isinstance(r, ValidationError) for r in results) == 1
    assert LedgerEntry.objects.filter(member=member, kind="adjustment").count() == 1
    assert available(member) == 3000


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_agents_adjustments_at_once_never_pass_the_monthly_limit(make_member, user_in, limits):
    # given
    member = make_member()
    maria = user_in("maria", "CX agent")
    # when: eight adjustments of 1,000 at once, the month allows five
    results = run_together(8, lambda i: give(member, 1000, maria))
    # then
    assert sum(isinstance(r, LedgerEntry) for r in results) == 5
    assert sum(isinstance(r, AdjustmentRequest) for r in results) == 3
    assert available(member) == 5000
