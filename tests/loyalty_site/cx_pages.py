"""A member's page in the CX Manager as an agent uses it: its address, and points
assigned through its form."""

import uuid

from django.urls import reverse


def member_page(member):
    return reverse("admin:members_member_change", args=[member.pk])


def assign(client, member, points, reason="Goodwill: late delivery", token=None, **extra):
    page = client.get(member_page(member))
    definition = page.context["assign_form"]["definition"].initial
    return client.post(
        reverse("admin:members_member_assign_points", args=[member.pk]),
        {
            "points": points,
            "reason": reason,
            "definition": definition.pk if hasattr(definition, "pk") else definition,
            "token": token or uuid.uuid4(),
            **extra,
        },
    )
