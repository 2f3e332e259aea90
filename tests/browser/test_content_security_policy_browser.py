"""The Content-Security-Policy runs only the site's own script files: every page of the
CX Manager and the API's docs work under it, with nothing refused by the browser."""

import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REFUSED = "Content Security Policy"


def watch(page) -> list[str]:
    """What the browser refuses under the policy, as it says it in its console."""
    said = []
    page.on(
        "console",
        lambda message: REFUSED in message.text and said.append(f"{page.url}: {message.text}"),
    )
    return said


def test_every_admin_page_and_the_api_docs_run_under_the_policy(page, log_in, make_member):
    make_member("M-70001")
    refused = watch(page)
    log_in("superuser")
    index = page.content()
    pages = sorted(set(re.findall(r'href="(/admin/[a-z_]+/[a-z_]+/)"', index)))
    assert len(pages) > 20  # the index lists every list of the CX Manager
    for path in pages:
        page.goto(path)
        first = page.locator("#result_list tbody th a").first
        if first.count():
            first.click()
        page.goto(path)
        add = page.locator("a.addlink")
        if add.count():
            add.first.click()
    for path in ["/admin/", "/admin/analytics/", "/admin/points/transaction/export/"]:
        page.goto(path)
        page.wait_for_load_state("networkidle")

    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .information-container .title")  # the script ran

    assert refused == []


def test_a_points_form_is_sent_once_however_often_it_is_clicked(page, log_in, make_member):
    member = make_member("M-70002")
    log_in("CX agent")
    page.goto(f"/admin/members/member/{member.pk}/change/")
    page.fill("#id_points", "250")
    page.fill("#id_reason", "Birthday gift")
    # Seen as the form leaves, after the page's own handler; kept on the page.
    page.evaluate(
        """() => window.addEventListener("submit", (event) => {
            window.sentWithButton = !event.target.querySelector("[type=submit]").disabled;
            event.preventDefault();
        })"""
    )

    page.click("#assign-points input[type=submit]")

    assert page.evaluate("window.sentWithButton") is False  # no second click can send it


def test_on_a_laptop_the_side_menu_starts_closed_and_keeps_the_users_choice(page, log_in):
    page.set_viewport_size({"width": 1200, "height": 900})
    log_in("Marketer")
    page.goto("/admin/tiers/tier/")
    assert "shifted" not in page.get_attribute("#main", "class")  # closed
    assert page.evaluate("localStorage.getItem('django.admin.navSidebarIsOpen')") is None

    page.click("#toggle-nav-sidebar")
    page.goto("/admin/tiers/tier/")

    assert "shifted" in page.get_attribute("#main", "class")  # open, as the user chose
