"""The CX Manager's long lists as staff use them all day: searches, filters and sorts
answer in a fixed number of queries and offer only what the indexes answer quickly
(the figures at a million members are bench/admin.py's)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_transaction_search_finds_a_transaction_by_its_id_and_a_member_s_by_the_code(
    client_admin, make_member, buy, django_assert_max_num_queries
):
    # given two members with purchases
    alice, bob = make_member(), make_member()
    buy(alice, "10", external_id="TILL-42-0001")
    buy(bob, "20", external_id="TILL-42-0002")
    buy(bob, "30", external_id="TILL-42-0003")
    url = reverse("admin:points_transaction_changelist")

    # when an agent searches a transaction id, then a customer code (any case)
    with django_assert_max_num_queries(8):
        by_id = client_admin.get(url, {"q": " TILL-42-0002 "}).content.decode()
    with django_assert_max_num_queries(8):
        by_code = client_admin.get(url, {"q": bob.external_id.lower()}).content.decode()

    # then the id finds that transaction alone, the code every transaction of the member
    assert "TILL-42-0002" in by_id
    assert "TILL-42-0001" not in by_id and "TILL-42-0003" not in by_id
    assert "TILL-42-0002" in by_code and "TILL-42-0003" in by_code
    assert "TILL-42-0001" not in by_code


def test_the_transaction_list_offers_no_channel_filter(client_admin, member):
    page = client_admin.get(reverse("admin:points_transaction_changelist"))

    assert [spec.title for spec in page.context["cl"].filter_specs] == ["kind"]
