"""G6 on the member page: "End the freeze now" ends the freeze the page showed, once. A
page opened before a colleague froze the member again ends nothing unseen."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.services.freezing import freeze_member
from tests.loyalty_site.conftest import page

pytestmark = pytest.mark.django_db


def freeze(member, by, days, reason):
    until = timezone.localdate() + timedelta(days=days)
    return freeze_member(member=member, until=until, reason=reason, by=by)


def end_freeze_form(html: str) -> dict:
    """The fields of the page's "End the freeze now" form, as the browser sends them."""
    form = re.search(r'<form[^>]*id="end-freeze".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def end(client, member, fields):
    url = reverse("admin:members_member_unfreeze", args=[member.pk])
    response = client.post(url, fields)
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def frozen(member) -> bool:
    return Member.objects.get(pk=member.pk).frozen_at(timezone.now())


def test_a_supervisor_ends_the_freeze_the_page_shows(client, login, member):
    supervisor = login("CX supervisor")
    freeze(member, supervisor, 30, "Relocation")

    said = end(client, member, end_freeze_form(page(client, member)))

    assert not frozen(member)
    assert said[0].startswith("Freeze ended on ")


def test_a_page_from_before_a_newer_freeze_ends_nothing(client, login, member):
    supervisor = login("CX supervisor")
    freeze(member, supervisor, 30, "Relocation")
    old_page = end_freeze_form(page(client, member))
    freeze(member, supervisor, 90, "Illness")  # a colleague, in another tab

    said = end(client, member, old_page)

    assert frozen(member)
    last_day = timezone.localdate() + timedelta(days=90)
    assert said == [
        f"The freeze of {member.external_id} was changed since this page was opened: it "
        f"now runs until {last_day:%-d %b %Y} (Illness). Nothing was ended: look at it "
        "again first."
    ]


def test_ending_a_freeze_twice_says_it_was_already_done(client, login, member):
    supervisor = login("CX supervisor")
    freeze(member, supervisor, 30, "Relocation")
    fields = end_freeze_form(page(client, member))
    end(client, member, fields)

    said = end(client, member, fields)  # a double click, or the browser sending it again

    assert not frozen(member)
    assert said[-1] == "This form was already sent: nothing was applied twice."


def test_a_form_without_what_the_page_showed_ends_nothing(client, login, member):
    supervisor = login("CX supervisor")
    freeze(member, supervisor, 30, "Relocation")

    said = end(client, member, {})

    assert frozen(member)
    assert said == ["This page is out of date: nothing was changed. Open the member page again."]
