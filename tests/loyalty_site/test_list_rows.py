"""Every list's rows are drawn as Django's admin draws them: the selection checkbox
written directly (loyalty_site.list_rows) is the widget's markup."""

from django.contrib import admin
from django.urls import reverse

from members.models import Member


def test_a_list_s_selection_checkbox_is_django_s_own(client_admin, make_member):
    # given a member whose name needs escaping
    member = make_member()
    Member.objects.filter(pk=member.pk).update(first_name="<b>Ana</b> & Co")

    # when an agent opens the member list
    page = client_admin.get(reverse("admin:members_member_changelist"))

    # then its row's checkbox is the one Django's widget draws, and selects it
    drawn = admin.ModelAdmin.action_checkbox(None, Member.objects.get(pk=member.pk))
    assert drawn in page.content.decode()
    assert f'value="{member.pk}"' in drawn and "&lt;b&gt;Ana&lt;/b&gt; &amp; Co" in drawn
