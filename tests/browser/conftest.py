"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live
server. No browser is downloaded: Playwright only drives the system's Chromium."""

import os
import shutil

import pytest
from django.contrib.auth.models import Group
from django.db import connections

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser(monkeypatch):
    """One Chromium per test. Playwright's sync API runs an event loop in this thread
    while it lives, and Django then hands the thread other connection objects: started
    after the database is set up and stopped before it is torn down, it leaves both
    untouched. The tests' own ORM calls are synchronous and safe under that loop."""
    if not os.path.exists(CHROMIUM):
        message = "browser tests need Debian's chromium: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()
        # The connections the test opened under Playwright's loop are that context's
        # own: close them here, or the test database cannot be dropped at the end.
        connections.close_all()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 1000}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def log_in(page, django_user_model):
    """Create a staff user of a role and log in through the login page."""

    def log_in(role, username=None):
        username = username or role.lower().replace(" ", "-")
        user = django_user_model.objects.create_user(
            username, password="s3cret-pass", is_staff=True
        )
        if role == "superuser":
            user.is_superuser = True
            user.save()
        else:
            user.groups.add(Group.objects.get(name=role))
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "s3cret-pass")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        return user

    return log_in
