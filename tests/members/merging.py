"""Merging duplicate accounts as an agent does, for the tests of the merge, and a
member read again from the database."""

from members.models import Member
from members.services import merge_members


def merge(survivor, duplicate, by, reason="New e-mail address", **kwargs):
    return merge_members(survivor=survivor, duplicate=duplicate, by=by, reason=reason, **kwargs)


def fresh(member) -> Member:
    return Member.objects.get(pk=member.pk)
