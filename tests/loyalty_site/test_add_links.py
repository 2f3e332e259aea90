"""An add link with a moment in its query (?starts_at=2027-01-01), as a bookmark or a
script makes it: the form is filled, or left empty, never a 500 (found by reviews)."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url, shown",
    [
        ("/admin/points/campaign/add/?starts_at=2027-01-01", 'value="2027-01-01"'),
        ("/admin/points/campaign/add/?ends_at=2027-01-01 10:00", 'value="10:00'),
        ("/admin/points/campaign/add/?starts_at=abc", "Add campaign"),
        ("/admin/rewards/reward/add/?available_from=2027-01-01", 'value="2027-01-01"'),
        ("/admin/members/member/add/?joined_at=2027-01-01", 'value="2027-01-01"'),
        ("/admin/api/apikey/add/?expiry_date=2027-01-01", 'value="2027-01-01"'),
        ("/admin/django_celery_beat/periodictask/add/?start_time=2027-01-01", "2027-01-01"),
        ("/admin/django_celery_beat/clockedschedule/add/?clocked_time=x", "clocked"),
    ],
)
def test_an_add_link_with_a_moment_fills_the_form_or_leaves_it_empty(admin_client, url, shown):
    page = admin_client.get(url)

    assert page.status_code == 200
    assert shown in page.content.decode()
