"""API keys in the CX Manager: superusers only; a key is shown once, works at once, and
answers 401 once revoked. The demo's key comes from a development-only command."""

import re
from datetime import date
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiKey
from api.services import create_api_key
from members.models import Member

pytestmark = pytest.mark.django_db

SHOWN = re.compile(r"<code>([\w.]+)</code>")


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def key_and_secret(db):
    return create_api_key(name="Till 3", channel="pos", store="STORE-03")


def api_get(secret, path):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Api-Key {secret}")


def member_url(member):
    return f"/api/v1/members/{member.external_id}"


def change_url(key):
    return reverse("admin:api_apikey_change", args=[quote(key.pk)])


def revoke(client, *keys, confirm="yes"):
    return client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", ACTION_CHECKBOX_NAME: [key.pk for key in keys], "confirm": confirm},
        follow=True,
    )


def test_a_superuser_creates_a_key_sees_it_once_and_it_works(superuser_client, member):
    # when
    page = superuser_client.post(
        reverse("admin:api_apikey_add"),
        {
            "name": "Web shop",
            "channel": "ecommerce",
            "store": "",
            "expiry_date_0": "",
            "expiry_date_1": "",
        },
        follow=True,
    )

    # then: the key is shown on the page after saving, with the warning
    body = page.content.decode()
    assert page.status_code == 200
    secret = SHOWN.search(body)[1]
    assert "Store it now: it cannot be seen again" in body
    key = ApiKey.objects.get()
    assert (key.name, key.channel, key.store, key.revoked) == ("Web shop", "ecommerce", "", False)
    assert secret.startswith(key.prefix + ".")
    assert not key.user.is_active and not key.user.has_usable_password()
    # and never again: not on the list, not on its own page
    for url in (reverse("admin:api_apikey_changelist"), change_url(key)):
        again = superuser_client.get(url)
        assert again.status_code == 200 and secret not in again.content.decode()
    # and it works at once
    response = api_get(secret, member_url(member))
    assert response.status_code == 200
    assert response.json()["external_id"] == member.external_id


def test_the_key_list_shows_its_columns(superuser_client, key_and_secret):
    # given
    key, secret = key_and_secret

    # when
    body = superuser_client.get(reverse("admin:api_apikey_changelist")).content.decode()

    # then
    for shown in ("Till 3", key.prefix, "Point of sale", "STORE-03", "Active", "Never"):
        assert shown in body
    assert secret not in body


def test_a_superuser_changes_name_store_and_expiry_but_not_the_channel(
    superuser_client, key_and_secret
):
    # given
    key, _ = key_and_secret

    # when
    superuser_client.post(
        change_url(key),
        {
            "name": "Till 4",
            "channel": "api",
            "store": "STORE-04",
            "expiry_date_0": "2030-01-01",
            "expiry_date_1": "00:00:00",
        },
    )

    # then
    key.refresh_from_db()
    assert (key.name, key.store, key.channel) == ("Till 4", "STORE-04", "pos")
    assert timezone.localtime(key.expiry_date).date() == date(2030, 1, 1) and not key.revoked


@pytest.mark.parametrize("role", ["CX agent", "Marketer"])
def test_staff_roles_get_403_on_every_key_page_and_no_action(client, login, key_and_secret, role):
    # given
    key, secret = key_and_secret
    login(role)
    pages = [
        reverse("admin:api_apikey_changelist"),
        reverse("admin:api_apikey_add"),
        change_url(key),
        reverse("admin:api_apikey_history", args=[quote(key.pk)]),
        reverse("admin:api_apikey_delete", args=[quote(key.pk)]),
    ]

    # when / then
    for url in pages:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("admin:api_apikey_add"), {"name": "Mine"}).status_code == 403
    assert client.post(change_url(key), {"name": "x", "revoked": "on"}).status_code == 403
    assert revoke(client, key).status_code == 403
    assert "API keys" not in client.get(reverse("admin:index")).content.decode()
    assert ApiKey.objects.count() == 1 and not ApiKey.objects.get().revoked


def test_staff_granted_every_key_permission_still_get_403(client, login, key_and_secret):
    # given: superusers only, whatever the permissions say
    user = login(None)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="api"))
    key, _ = key_and_secret

    # when / then
    assert client.get(reverse("admin:api_apikey_changelist")).status_code == 403
    assert revoke(client, key).status_code == 403
    assert not ApiKey.objects.get().revoked


def test_revoking_makes_the_key_answer_401(superuser_client, key_and_secret, member):
    # given
    key, secret = key_and_secret
    assert api_get(secret, member_url(member)).status_code == 200

    # when
    page = revoke(superuser_client, key)

    # then
    assert "1 key(s) revoked" in page.content.decode()
    response = api_get(secret, member_url(member))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert ApiKey.objects.get().revoked
    listed = superuser_client.get(reverse("admin:api_apikey_changelist")).content.decode()
    assert "Revoked" in listed
    history = superuser_client.get(reverse("admin:api_apikey_history", args=[quote(key.pk)]))
    assert "Revoked" in history.content.decode()
    # revoking twice changes nothing
    assert "0 key(s) revoked" in revoke(superuser_client, key).content.decode()


def test_revoking_asks_first_naming_each_key_and_revokes_nothing_until_confirmed(
    superuser_client, key_and_secret, member
):
    # given
    key, secret = key_and_secret

    # when: the action is chosen on the list
    page = revoke(superuser_client, key, confirm="")

    # then: a page names the key and says it is final; the key still works
    html = page.content.decode()
    assert "This cannot be undone." in html
    assert f"{key.name} ({key.prefix}, " in html
    assert not ApiKey.objects.get().revoked
    assert api_get(secret, member_url(member)).status_code == 200


def test_revoking_on_the_change_form_is_for_good(superuser_client, key_and_secret, member):
    # given
    key, secret = key_and_secret
    form = {"name": "Till 3", "store": "STORE-03", "expiry_date_0": "", "expiry_date_1": ""}

    # when: revoked, then the form sent again without the box ticked
    superuser_client.post(change_url(key), {**form, "revoked": "on"})
    superuser_client.post(change_url(key), form)

    # then
    assert ApiKey.objects.get().revoked
    assert api_get(secret, member_url(member)).status_code == 401


def test_keys_are_never_deleted(superuser_client, key_and_secret):
    # given
    key, _ = key_and_secret

    # when
    response = superuser_client.post(
        reverse("admin:api_apikey_delete", args=[quote(key.pk)]), {"post": "yes"}
    )

    # then
    assert response.status_code == 403
    assert ApiKey.objects.count() == 1


def test_the_librarys_own_key_admin_is_gone(superuser_client):
    assert superuser_client.get("/admin/rest_framework_api_key/apikey/").status_code == 404


def test_the_key_list_runs_a_bounded_number_of_queries(
    superuser_client, django_assert_max_num_queries
):
    # given
    for n in range(60):
        create_api_key(name=f"Till {n}", channel="pos", store=f"STORE-{n:02d}")

    # when / then: session, user, the page's rows and its count, whatever the keys
    with django_assert_max_num_queries(6):
        response = superuser_client.get(reverse("admin:api_apikey_changelist"))
    assert response.status_code == 200 and "Till 59" in response.content.decode()


# The demo's key (make run)


def test_the_demo_key_command_refuses_to_run_with_debug_off(settings):
    # given
    settings.DEBUG = False

    # when / then
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("dev_api_key")
    assert not ApiKey.objects.exists()


def demo_key(host="127.0.0.1:8000") -> str:
    """The key dev_api_key prints, with the address the README's examples use."""
    out = StringIO()
    call_command("dev_api_key", host=host, stdout=out)
    printed = out.getvalue()
    secret = re.search(rf"export API_KEY=(\S+) API=http://{host}/api/v1\n", printed)[1]
    assert 'curl -H "Authorization: Api-Key $API_KEY" $API/members/M-00001' in printed
    return secret


def test_the_printed_demo_key_works_and_replaces_the_previous_one(settings, make_member):
    # given
    settings.DEBUG = True
    member = make_member("M-00001")
    first = demo_key()

    # when: make run again, on another address
    second = demo_key(host="127.0.0.1:8075")

    # then
    assert api_get(second, member_url(member)).status_code == 200
    assert api_get(first, member_url(member)).status_code == 401
    live = ApiKey.objects.get(revoked=False)
    assert (live.name, live.channel, live.store) == ("Demo till", "pos", "STORE-DEMO")


def test_changes_a_key_made_are_attributed_to_its_name_and_follow_a_rename(
    superuser_client, key_and_secret, member
):
    # given a purchase through the key "Till 3"
    key, secret = key_and_secret
    bought = APIClient().post(
        "/api/v1/transactions",
        {
            "external_id": "T-NAMED",
            "member": member.external_id,
            "kind": "purchase",
            "amount": "10.00",
            "occurred_at": "2026-03-02T10:00:00+01:00",
        },
        format="json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )
    assert bought.status_code == 201, bought.json()
    # and an enrolment through it, which writes a history row (found by an audit: the
    # row's text kept the name the key had then, "Enrolled through the API key Till 3")
    enrolled = APIClient().post(
        "/api/v1/members",
        {"external_id": "M-NAMED", "email": "named@example.com"},
        format="json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )
    assert enrolled.status_code == 201, enrolled.json()
    new_member = Member.objects.get(external_id="M-NAMED")
    history_page = reverse("admin:members_member_history", args=[new_member.pk])
    member_page = reverse("admin:members_member_change", args=[member.pk])
    before = superuser_client.get(member_page).content.decode()

    # when the superuser renames the key
    superuser_client.post(
        change_url(key), {"name": "Till 4", "store": "STORE-03", "expiry_date_0": ""}
    )

    # then the member page names the key that made the entry, by its name and prefix
    after = superuser_client.get(member_page).content.decode()
    assert f"Till 3 (API key {key.prefix})" in before
    assert f"Till 4 (API key {key.prefix})" in after and "Till 3" not in after
    history = superuser_client.get(history_page).content.decode()
    assert "Enrolled through the API" in history
    assert f"Till 4 (API key {key.prefix})" in history and "Till 3" not in history


def test_a_new_key_never_travels_in_a_cookie(superuser_client):
    """The message that shows a new key once waits in the session, server side: in the
    messages cookie (signed, not encrypted) it went back in the browser's next request,
    which proxies and balancers may log (security audit)."""
    # when: the key is saved (the redirect), then the page that shows it
    saved = superuser_client.post(
        reverse("admin:api_apikey_add"),
        {
            "name": "Till 12",
            "channel": "pos",
            "store": "",
            "expiry_date_0": "",
            "expiry_date_1": "",
        },
    )
    shown = superuser_client.get(saved["Location"])

    # then: shown on the page; no messages cookie set on the way
    assert SHOWN.search(shown.content.decode())
    assert "messages" not in saved.cookies and "messages" not in shown.cookies


def test_the_key_form_sent_twice_makes_one_key_shown_once(superuser_client):
    # given: the form as the superuser opened it (its one-time token)
    add = reverse("admin:api_apikey_add")
    token = re.search(r'name="_once" value="([^"]+)"', superuser_client.get(add).content.decode())
    form = {"name": "Web shop", "channel": "ecommerce", "store": "", "_once": token[1]}
    form |= {"expiry_date_0": "", "expiry_date_1": ""}

    # when: sent, then sent again (a refresh)
    first = superuser_client.post(add, form, follow=True)
    again = superuser_client.post(add, form, follow=True)

    # then: one key, shown once; the second says nothing was added
    assert SHOWN.search(first.content.decode())
    assert not SHOWN.search(again.content.decode())
    assert "This form was already sent: nothing was added twice." in again.content.decode()
    assert ApiKey.objects.count() == 1
