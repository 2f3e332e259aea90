import pytest
from django.contrib.auth.models import Group

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
