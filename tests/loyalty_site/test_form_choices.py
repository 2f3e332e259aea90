"""A choice of a related row posted with an id that is no id (twenty digits, which
SQLite cannot hold): the form says "Select a valid choice", never a 500."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "url_name, field",
    [
        ("admin:points_campaign_add", "tiers"),  # several rows (ModelMultipleChoiceField)
        ("admin:rewards_reward_add", "min_tier"),  # one row (ModelChoiceField)
    ],
)
def test_a_related_choice_that_is_no_id_is_a_form_error(admin_client, url_name, field):
    page = admin_client.post(reverse(url_name), {"name": "Double points", field: [HUGE]})
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
