"""Who may move a member's birth date: a birthday campaign multiplies what a member
earns in their birthday month (P3), so a birth date given is corrected by a CX
supervisor; a CX agent gives one the member never gave."""

from datetime import date

import pytest

from members.models import Member
from tests.loyalty_site.test_audit_member_desk import contact_form, member_page

pytestmark = pytest.mark.django_db


def birth_date_of(member):
    return Member.objects.get(pk=member.pk).birth_date


@pytest.fixture
def born(make_member):
    member = make_member("M-BORN")
    Member.objects.filter(pk=member.pk).update(birth_date=date(1990, 7, 14))
    return Member.objects.get(pk=member.pk)


def test_a_cx_agent_sees_a_given_birth_date_and_cannot_move_it(client, login, born):
    # given
    login("CX agent")

    # when: the agent opens the page, then sends another birth date with a phone
    page = client.get(member_page(born)).content.decode()
    saved = client.post(
        member_page(born), contact_form(born, phone="+34 611", birth_date="1990-12-03")
    )

    # then: the date is shown, not a field; the phone is saved, the birth date stays
    assert 'name="birth_date"' not in page and "14 Jul 1990" in page
    assert saved.status_code == 302
    assert Member.objects.get(pk=born.pk).phone == "+34 611"
    assert birth_date_of(born) == date(1990, 7, 14)


def test_a_cx_agent_gives_a_birth_date_the_member_never_gave(client, login, make_member):
    member = make_member("M-NONE")
    login("CX agent")

    saved = client.post(member_page(member), contact_form(member, birth_date="1985-03-09"))

    assert saved.status_code == 302
    assert birth_date_of(member) == date(1985, 3, 9)


def test_a_cx_supervisor_corrects_a_birth_date(client, login, born):
    login("CX supervisor")

    page = client.get(member_page(born)).content.decode()
    saved = client.post(member_page(born), contact_form(born, birth_date="1990-12-03"))

    assert 'name="birth_date" value="1990-07-14"' in page  # as files and the API write it
    assert saved.status_code == 302
    assert birth_date_of(born) == date(1990, 12, 3)


def test_an_agent_s_save_racing_another_does_not_move_the_birth_date_given(
    client, login, make_member, monkeypatch
):
    """Found by an audit: the page checked the birth date it read, and the save wrote
    over one another agent gave meanwhile."""
    from loyalty_site.member_page import MemberAdmin

    # given: another agent gives 14 Jul 1990 while this agent's save is under way
    member = make_member("M-RACE")
    login("CX agent")
    readonly = MemberAdmin.get_readonly_fields

    def another_agent_saves_meanwhile(self, request, obj=None):
        fixed = readonly(self, request, obj)
        if request.method == "POST":
            Member.objects.filter(pk=member.pk).update(birth_date=date(1990, 7, 14))
        return fixed

    monkeypatch.setattr(MemberAdmin, "get_readonly_fields", another_agent_saves_meanwhile)

    # when: this agent's 3 Dec 1990 is saved
    saved = client.post(
        member_page(member), contact_form(member, birth_date="1990-12-03"), follow=True
    )

    # then: this agent's date is not saved, and the agent is told why (the other's
    # update, made here inside this request's transaction, is rolled back with it)
    assert birth_date_of(member) is None
    assert "was given a birth date meanwhile: a CX supervisor corrects it" in (
        saved.content.decode()
    )


def test_an_agent_whose_page_was_open_before_a_birth_date_was_given_hears_it_was_kept(
    client, login, make_member
):
    """Found by an audit: the date typed on a page opened before was dropped, and the
    agent read "changed successfully"."""
    # given: the agent's page open on a member without a birth date; then one is given
    member = make_member("M-OPEN")
    login("CX agent")
    Member.objects.filter(pk=member.pk).update(birth_date=date(1990, 7, 14))

    # when: the page sends its date with a phone
    sent = contact_form(member, phone="+34 622", birth_date="1990-12-03")
    page = client.post(member_page(member), sent, follow=True).content.decode()

    # then: the phone is saved, the birth date kept, and the agent told so
    assert Member.objects.get(pk=member.pk).phone == "+34 622"
    assert birth_date_of(member) == date(1990, 7, 14)
    assert "already has a birth date (14 Jul 1990): a CX supervisor corrects it" in page


@pytest.mark.parametrize("sent", ["1990-02-31", "31/31/1990", "x" * 300])
def test_a_birth_date_an_agent_may_not_change_sent_as_nonsense_changes_nothing(
    client, login, born, sent
):
    login("CX agent")

    saved = client.post(member_page(born), contact_form(born, birth_date=sent))

    assert saved.status_code == 302
    assert birth_date_of(born) == date(1990, 7, 14)
