"""A transaction file imported through the CX Manager (upload, background check,
confirm, background import) against `manage.py import_transactions` on the same file.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \
        python bench/import_admin.py [--rows 100000] [--members 20000]

Two scratch databases with the same members (see synthetic.py): the command runs on
one; on the other, gunicorn (one process) and one `celery worker` serve the admin, and
this script logs in, uploads the file, follows the page's progress, confirms and
follows the import, as a browser would; with --browser, headless Chromium (Debian's,
through Playwright) does it on the pages themselves, clicking as an operator does and
waiting for the page to say the step is done. Prints both times, their ratio (goal: at
most 1.5) and the peak memory of the command, the web process and the worker (flat in
the file's size: run --rows 1000000 and compare).
"""

import argparse
import importlib
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from synthetic import ROOT, copy_members, free_host, setup_scratch_database

write_csv = importlib.import_module("import").write_csv
HOST = free_host()  # this run's web server, never another run's


def peak_mb(pid: int) -> float:
    """The peak resident memory of a live process and its children (MB)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    peaks = []
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
    return max(peaks)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--browser", action="store_true", help="drive Chromium on the pages")
    args = parser.parse_args()
    name = setup_scratch_database("import_admin")

    import psycopg
    import requests
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from loyalty_site.demo import load_programme

    tiers = load_programme()
    now = timezone.now()
    copy_members(
        (pk, now - timedelta(days=400), tiers["bronze"].pk, 0, 0, None)
        for pk in range(1, args.members + 1)
    )
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-pass-1")
    url = os.environ["DATABASE_URL"]
    connection.close()
    twin = f"{name}_twin"
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{twin}"')
        admin.execute(f'CREATE DATABASE "{twin}" TEMPLATE "{name}"')

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "transactions.csv"
        write_csv(path, args.rows, args.members, now)
        print(f"file      {args.rows:,} rows, {path.stat().st_size / 2**20:.1f} MB")

        # The command, on the twin database.
        env = {**os.environ, "DATABASE_URL": url.rsplit("/", 1)[0] + "/" + twin}
        started = time.perf_counter()
        command = subprocess.Popen(
            [sys.executable, "manage.py", "import_transactions", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        out, _ = command.communicate()
        command_seconds = time.perf_counter() - started
        command_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"command   {command_seconds:7.1f} s  {out.strip().splitlines()[-1]}")

        # The CX Manager, served as in production.
        served = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "MEDIA_ROOT": str(Path(folder) / "media"),
            "CELERY_QUEUE": f"bench-{secrets.token_hex(4)}",
            "STATIC_ROOT": str(Path(folder) / "static"),
        }
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=served,
            check=True,
        )
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "loyalty_site.wsgi",
                "--bind",
                HOST,
                "--workers",
                "1",
                "--timeout",
                "600",
            ],
            cwd=ROOT,
            env=served,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "loyalty_site",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "WARNING",
            ],
            cwd=ROOT,
            env=served,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://{HOST}/admin/"
            for _ in range(100):
                try:
                    requests.get(base + "login/", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            through = through_pages if args.browser else through_http
            admin_seconds, checked, done = through(base, path)
            web_peak, worker_peak = peak_mb(web.pid), peak_mb(worker.pid)
        finally:
            web.terminate()
            worker.terminate()
            web.wait()
            worker.wait()
        print(f"admin     {admin_seconds:7.1f} s  (upload and check {checked:.1f} s), {done}")
        print(f"ratio     {admin_seconds / command_seconds:.2f} (goal: at most 1.5)")
        print(
            f"memory    command {command_peak:,.0f} MB, web {web_peak:,.0f} MB, "
            f"worker {worker_peak:,.0f} MB at {args.rows:,} rows"
        )


def through_http(base, path) -> tuple[float, float, str]:
    """The steps as the page's requests: (seconds in all, seconds to the check's end,
    the last state)."""
    import requests

    browser = requests.Session()
    browser.get(base + "login/", timeout=5)
    login = {"username": "bench", "password": "bench-pass-1", "next": "/admin/"}
    browser.post(base + "login/", data={**login, **csrf(browser)}, headers=origin())
    started = time.perf_counter()
    with path.open("rb") as handle:
        uploaded = browser.post(
            base + "core/importbatch/upload/",
            data={"kind": "transactions", **csrf(browser)},
            files={"file": ("transactions.csv", handle, "text/csv")},
            headers=origin(),
        )
    found = re.search(r"/importbatch/(\d+)/change/", uploaded.url)
    if not found:
        sys.exit(f"upload failed: {uploaded.status_code} {uploaded.url}\n{uploaded.text[-1500:]}")
    batch = found.group(1)
    follow(browser, base, batch)
    checked = time.perf_counter() - started
    browser.post(f"{base}core/importbatch/{batch}/confirm/", data=csrf(browser), headers=origin())
    done = follow(browser, base, batch)
    return time.perf_counter() - started, checked, done


def through_pages(base, path) -> tuple[float, float, str]:
    """The steps in headless Chromium on the pages: log in, upload, wait for the check's
    summary, confirm, wait for the import's end."""
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = chromium.new_page()
        page.set_default_timeout(3_600_000)
        page.goto(base + "login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "bench-pass-1")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        started = time.perf_counter()
        page.goto(base + "core/importbatch/upload/")
        page.select_option("#id_kind", "transactions")
        page.set_input_files("#id_file", str(path))
        page.click("input[type=submit]")
        page.wait_for_selector("#summary, .errornote, #errors")
        checked = time.perf_counter() - started
        page.click("#confirm input[type=submit]")
        page.wait_for_selector("text=Its transactions")
        seconds = time.perf_counter() - started
        done = page.inner_text("#status")
        chromium.close()
    return seconds, checked, done


def csrf(session) -> dict:
    return {"csrfmiddlewaretoken": session.cookies.get("csrftoken", "")}


def origin() -> dict:
    return {"Referer": f"http://{HOST}/admin/"}


def follow(browser, base, batch) -> str:
    """Poll the batch's state as its page does, until the step ends."""
    while True:
        state = browser.get(f"{base}core/importbatch/{batch}/state/").json()
        if state["done"]:
            return state["label"]
        time.sleep(0.5)


if __name__ == "__main__":
    main()
