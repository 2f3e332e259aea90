"""A member's name shows as it reads, whichever door it comes through (found by an
audit of names): a right-to-left override left open turned the rest of an agent's line
around in the member picker ("se.elpmaxe@" for the e-mail, "revliS" for the tier), a
line break cut the welcome e-mail's subject after the first name, and a zero-width
space made a second, identical-looking name. The joiners that Persian and Indic names
and emoji need are kept."""

import io

import pytest
from django.urls import reverse

from members.models import Member
from points.member_rows import read_members
from points.services import import_members
from tests.api.conftest import assert_problem, post

pytestmark = pytest.mark.django_db

UNREADABLE = {
    "override": "\u202eevil\u202c",
    "line break": "Ana\nMaría",
    "tab": "Ana\tMaría",
    "zero-width space": "Pérez\u200b",
}
READABLE = {
    "Persian, with its non-joiner": "فاطمه\u200cزهرا",
    "an emoji family": "Ana \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "Chinese": "王小明",
    "an apostrophe and a hyphen": "O'Brien-Smith",
}


@pytest.mark.parametrize("name", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_name_is_refused_by_the_api_naming_the_field(api, tiers, name):
    body = {"external_id": "M-1", "email": "ana@example.com", "first_name": name}
    problem = assert_problem(post(api, "/api/v1/members", body), 400, fields=["first_name"])
    assert "invisible character" in problem["errors"][0]["message"]
    assert not Member.objects.exists()


@pytest.mark.parametrize("name", READABLE.values(), ids=READABLE.keys())
def test_a_name_in_any_script_is_enrolled_as_written(api, tiers, name):
    body = {"external_id": "M-1", "email": "ana@example.com", "last_name": name}
    assert post(api, "/api/v1/members", body).status_code == 201
    assert Member.objects.get().last_name == name


@pytest.mark.parametrize("name", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_name_is_a_row_error_in_the_members_file(tiers, name):
    text = f'external_id,email,last_name\nM-1,ana@example.com,"{name}"\n'
    rows, errors = read_members(io.BytesIO(text.encode()))
    report = import_members(rows, errors=errors)
    assert [(e.line, e.column) for e in report.errors] == [(2, "last_name")]
    assert not Member.objects.exists()


def test_an_unreadable_name_is_refused_beside_its_field_in_the_cx_manager(
    admin_client, make_member
):
    member = make_member("M-1")
    url = reverse("admin:members_member_change", args=[member.pk])
    form = admin_client.get(url).context["adminform"].form
    values = {name: form[name].value() or "" for name in form.fields}
    page = admin_client.post(url, {**values, "first_name": "\u202eevil"})
    assert list(page.context["adminform"].form.errors) == ["first_name"]
    assert Member.objects.get(pk=member.pk).first_name == ""
