"""Every page and action of the CX Manager checks a named permission: a role sees and
does only what its group grants."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.urls import URLPattern, URLResolver, reverse

from members.models import Member
from points.models import ExpiryPolicy
from points.services import record_purchase
from rewards.models import Redemption
from rewards.services import redeem
from tests.conftest import at, summary

pytestmark = pytest.mark.django_db

ROLES = ["CX agent", "Marketer", "Operations", None]  # None: staff in no group


def registered_actions():
    """(model admin, action name, action) of every action the site offers."""
    for model_admin in admin.site._registry.values():
        for name in model_admin.actions or []:
            yield model_admin, name, getattr(type(model_admin), name)


def test_every_admin_action_names_its_permission():
    unnamed = [
        f"{type(model_admin).__name__}.{name}"
        for model_admin, name, action in registered_actions()
        if not getattr(action, "allowed_permissions", None)
    ]
    assert unnamed == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_offered_only_the_actions_its_group_grants(rf, django_user_model, role):
    # given
    user = django_user_model.objects.create_user("staff", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    request = rf.get("/")
    request.user = user

    # then: every action offered is one whose permission the group holds
    for model_admin, name, action in registered_actions():
        offered = name in model_admin.get_actions(request)
        allowed = all(
            getattr(model_admin, f"has_{permission}_permission")(request)
            for permission in action.allowed_permissions
        )
        assert offered == allowed, f"{role} and {name}"


@pytest.fixture
def redemption(member, buy, catalogue):
    buy(member, "600")
    return redeem(member=member, reward=catalogue["5 euro voucher"])


def cancel(client, redemption):
    return client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel", ACTION_CHECKBOX_NAME: [redemption.pk], "reason": "Changed their mind"},
        follow=True,
    )


def test_a_marketer_cannot_cancel_and_refund_a_redemption(client, login, member, redemption):
    # given
    login("Marketer")
    before = summary(member)["available"]

    # when
    cancel(client, redemption)

    # then
    assert Redemption.objects.get(pk=redemption.pk).status == "redeemed"
    assert summary(member)["available"] == before


def test_a_cx_agent_cancels_and_refunds_a_redemption(client, login, member, redemption):
    # given
    login("CX agent")
    before = summary(member)["available"]

    # when
    page = cancel(client, redemption)

    # then
    assert "1 redemption cancelled and refunded." in page.content.decode()
    assert summary(member)["available"] == before + redemption.points


# Every admin URL, as staff in no group: nothing about any member.


SECRETS = ("M-SECRET-7", "zebedee.secret@example.com", "Zebedee", "Quinterro")


@pytest.fixture
def known_member(tiers):
    from members.services import enroll_member

    return enroll_member(
        external_id=SECRETS[0], email=SECRETS[1], first_name=SECRETS[2], last_name=SECRETS[3]
    )


def admin_urls(member: Member):
    """Every URL of the CX Manager, with ids filled in: the member's where a view takes
    one (other models' ids of 1 either exist or give 404)."""
    values = {
        "object_id": str(member.pk),
        "app_label": "members",
        "content_type_id": "1",
    }

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m[1], "1"), route)
                yield "/admin/" + path.lstrip("^").rstrip("$")

    site_patterns, _, _ = admin.site.urls
    return sorted(set(walk(site_patterns, "")))


def test_staff_in_no_group_see_no_member_data_on_any_admin_page(client, login, known_member):
    # given
    login(None)
    known_member_buys = record_purchase(
        member=known_member,
        amount=Decimal("100"),
        occurred_at=at("2026-03-02"),
        external_id="P-SECRET",
    )
    assert known_member_buys.pk
    quarterly_expiry()
    urls = admin_urls(known_member)
    urls.append(
        "/admin/autocomplete/?app_label=points&model_name=ledgerentry&field_name=member&term=Zeb"
    )
    assert "/admin/points/expirypolicy/preview/" in urls

    # when / then
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404, 405), url
        body = response.content.decode(errors="replace")
        assert not [secret for secret in SECRETS if secret in body], url


def test_the_expiry_preview_needs_the_member_view_permission(client, login, known_member):
    # given: a role that may see the policy but not the members
    user = login(None)
    user.user_permissions.add(Permission.objects.get(codename="view_expirypolicy"))

    # when
    response = client.get(reverse("admin:points_expirypolicy_preview"))

    # then
    assert response.status_code == 403


def test_the_expiry_preview_lists_members_for_a_marketer(client, login, member, buy):
    # given
    buy(member, "100")
    quarterly_expiry()
    login("Marketer")

    # when
    response = client.get(reverse("admin:points_expirypolicy_preview"))

    # then
    assert response.status_code == 200 and member.external_id in response.content.decode()


def quarterly_expiry():
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = ExpiryPolicy.Cycle.QUARTERLY, date(2020, 1, 1)
    policy.save()


# Export of personal data


@pytest.mark.parametrize("role", ["CX agent", "Marketer"])
def test_member_export_needs_its_own_permission(client, login, known_member, role):
    # given
    login(role)

    # when
    page = client.get(reverse("admin:members_member_changelist"))
    export = client.post(reverse("admin:members_member_export"), {"format": "0"})

    # then
    assert page.status_code == 200 and "Export" not in page.content.decode()
    assert export.status_code == 403
    assert SECRETS[1] not in export.content.decode(errors="replace")


def test_a_user_with_the_export_permission_exports_members(client, login, known_member):
    # given
    user = login("CX agent")
    user.user_permissions.add(Permission.objects.get(codename="export_member"))

    # when
    export = client.post(
        reverse("admin:members_member_export"),
        {"format": "0", "resource": "0", **{f"memberresource_{f}": "on" for f in FIELDS}},
    )

    # then
    assert export.status_code == 200 and SECRETS[1] in export.content.decode()


FIELDS = ["external_id", "email", "first_name", "last_name"]


# The import's confirm step reads only the file this user uploaded, once.

HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


def upload(client, text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    csv_file = SimpleUploadedFile("t.csv", (HEADER + text).encode(), content_type="text/csv")
    page = client.post(
        reverse("admin:points_transaction_import"), {"import_file": csv_file, "format": "0"}
    )
    return page.context["confirm_form"].initial


def confirm(client, form):
    return client.post(reverse("admin:points_transaction_process_import"), form, follow=True)


def test_confirming_an_import_twice_imports_it_once_and_says_so(client, login, member):
    # given
    login("CX agent")
    form = upload(client, f"T-1,{member.external_id},purchase,100,2026-03-01,,,\n")
    confirm(client, form)

    # when
    again = confirm(client, form)

    # then
    assert again.status_code == 200
    assert "This file was already imported: nothing was imported twice." in again.content.decode()
    assert summary(member)["lifetime"] == 100


def _out_of_reach(failure: str):
    """(what fails, its method, the error): the database or the import store."""
    from django.db import OperationalError

    from core.models import ImportBatch
    from core.private_files import PrivateFiles

    if failure == "database":
        return ImportBatch, "save", OperationalError("server closed the connection unexpectedly")
    return PrivateFiles, "_save", OSError(28, "No space left on device")


@pytest.mark.parametrize("failure", ["database", "file store"])
def test_a_confirm_that_failed_can_be_sent_again_and_imports_the_file(
    client, login, member, monkeypatch, failure
):
    # given: the first confirm fails, the database or the import store out of reach
    login("CX agent")
    form = upload(client, f"T-1,{member.external_id},purchase,100,2026-03-01,,,\n")
    target, method, error = _out_of_reach(failure)

    def fails(*args, **kwargs):
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(target, method, fails)
        client.raise_request_exception = False
        # the database away: a page saying to try again; a full disk: a fault (500)
        assert confirm(client, form).status_code == (503 if failure == "database" else 500)

    # when: the operator sends it again
    again = confirm(client, form)

    # then: the file is imported, once, not called imported already
    assert "already imported" not in again.content.decode()
    assert "Import finished: 1 new" in again.content.decode()
    assert summary(member)["lifetime"] == 100


def test_the_confirm_step_refuses_a_file_the_user_did_not_upload(
    client, login, member, tmp_path, django_user_model
):
    # given: a file on the server, and a confirm form naming it
    other = tmp_path / "someone-elses.csv"
    other.write_text(HEADER + f"T-9,{member.external_id},purchase,100,2026-03-01,,,\n")
    login("CX agent")
    form = upload(client, f"T-1,{member.external_id},purchase,100,2026-03-01,,,\n")

    # when: the name is forged, or the form was signed for another user
    forged = confirm(client, {**form, "import_file_name": str(other)})
    client.force_login(django_user_model.objects.create_superuser("boss"))
    stolen = confirm(client, form)

    # then
    assert forged.status_code == 403 and stolen.status_code == 403
    assert other.exists()
    assert summary(member)["lifetime"] == 0
