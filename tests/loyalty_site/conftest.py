import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from points.models import AdjustmentLimit


@pytest.fixture
def limits(db):
    """CX agents give up to 1,000 points at a time and 5,000 a month."""
    return AdjustmentLimit.objects.create(
        group=Group.objects.get(name="CX agent"), per_adjustment=1000, per_month=5000
    )


@pytest.fixture
def maria(django_user_model):
    """A CX agent."""
    user = django_user_model.objects.create_user("maria", is_staff=True)
    user.groups.add(Group.objects.get(name="CX agent"))
    return user


@pytest.fixture
def client_admin(client, admin_user):
    """The test client logged in as a superuser."""
    client.force_login(admin_user)
    return client


def page(client, member) -> str:
    """The member's page in the CX Manager, as the client sees it."""
    response = client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert response.status_code == 200
    return response.content.decode()


def said(html: str, element_id: str) -> str | None:
    """The text of the page's paragraph `element_id`, tags dropped, spaces tidied."""
    found = re.search(rf'<p[^>]*id="{element_id}"[^>]*>(.*?)</p>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()) if found else None
