"""When a service the application needs stops or stalls: the processes come back by
themselves, and staff and tills get a bounded wait and an answer that says to try
again, never a hang or a bare 500 (found by an audit of outages and restarts)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from points.models import LedgerEntry
from tests.conftest import held_by_another, postgres_only, summary
from tests.loyalty_site.cx_pages import assign, member_page

ROOT = Path(__file__).resolve().parents[2]


def procfile_command(name: str) -> str:
    """The command of a process of Procfile.prod, as honcho runs it (`sh -c`)."""
    for line in (ROOT / "Procfile.prod").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"Procfile.prod has no {name}")


def fake_program(folder: Path, name: str, body: str) -> None:
    program = folder / name
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_a_worker_or_beat_that_ends_is_started_again(tmp_path, name):
    # given: a celery that ends at once, as a worker does on a Redis restart (kombu's
    # "Unrecoverable error"), and no wait between starts
    calls = tmp_path / "calls"
    fake_program(tmp_path, "celery", f'echo "$@" >> {calls}; exit 1')
    fake_program(tmp_path, "sleep", "exit 0")
    environment = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    # when: the line of Procfile.prod runs, as honcho runs it
    process = subprocess.Popen(
        ["/bin/sh", "-c", procfile_command(name)],
        env=environment,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(started := _lines(calls)) < 3:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # as honcho stops its processes
        said = process.communicate(timeout=10)[1].decode()

    # then: it was started again, the same way each time, and the log says why
    assert len(started) >= 3 and len(set(started)) == 1
    assert started[0].startswith(f"-A loyalty_site {name}")
    assert f"{name} ended (1): starting it again in 5 s" in said


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("web_lock_timeout")
def test_points_assigned_to_a_member_held_past_the_lock_timeout_get_a_page_saying_to_retry(
    client, login, member
):
    # given: an agent on the page of a member an import holds
    login("CX agent")
    assert client.get(member_page(member)).status_code == 200

    # when: the agent assigns points meanwhile
    with held_by_another(member):
        page = assign(client, member, 250)

    # then: a page that says what happened and to try again, and nothing written
    assert page.status_code == 503 and page["Retry-After"] == "5"
    text = page.content.decode()
    assert "Try again in a moment" in text and "an import" in text
    assert not LedgerEntry.objects.filter(member=member, kind="adjustment").exists()

    # and once the import is done, the same form works
    assert assign(client, member, 250).status_code == 302
    assert summary(member)["available"] == 250


@postgres_only
@pytest.mark.django_db
def test_the_web_waits_for_a_row_lock_2_s_at_most_and_the_workers_as_long_as_it_takes():
    def lock_timeout(start: str) -> str:
        """What a process started this way (the web's wsgi.py, or Django alone as a
        worker and beat start) is told by PostgreSQL. Set once connected: a connection
        that asks for it in its startup `options` is refused by PgBouncer (found by a
        review), so none may."""
        program = (
            f"{start}; from django.db import connection; cursor = connection.cursor(); "
            "assert 'options' not in connection.get_connection_params(); "
            "cursor.execute('SHOW lock_timeout'); print(cursor.fetchone()[0])"
        )
        database = connection.settings_dict
        url = f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loyalty_site.settings",
            "DATABASE_URL": f"{url}:{database['PORT'] or 5432}/{database['NAME']}",
        }
        environment.pop("DATABASE_LOCK_TIMEOUT", None)
        ran = subprocess.run(
            [sys.executable, "-c", program],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
        )
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.strip()

    assert lock_timeout("import loyalty_site.wsgi") == "2s"
    # runserver (make run) too: manage.py's start, Django set up as the command would
    runserver = (
        "import runpy, sys, django, django.core.management as management; "
        "management.execute_from_command_line = lambda argv: django.setup(); "
        "sys.argv = ['manage.py', 'runserver']; runpy.run_path('manage.py', run_name='__main__')"
    )
    assert lock_timeout(runserver) == "2s"
    assert lock_timeout("import django; django.setup()") == "0"


UNREACHABLE_CACHE = {
    "BACKEND": "core.redis_cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}


@pytest.mark.django_db
def test_the_dashboard_answers_with_its_figures_while_the_shared_cache_is_down(
    client, admin_user, settings, caplog, make_member
):
    # given: a member, and Redis, which keeps the dashboard's figures, not answering
    make_member()
    client.force_login(admin_user)
    settings.CACHES = {**settings.CACHES, "default": UNREACHABLE_CACHE}

    # when: agents open the dashboard, where they land after logging in
    pages = [client.get("/admin/") for _ in range(2)]

    # then: it shows its figures, computed for the visit, and operations are told once
    assert [page.status_code for page in pages] == [200, 200]
    assert "Members per tier" in pages[0].content.decode()
    assert caplog.text.count("figures computed for this visit alone") == 1


def test_an_import_s_progress_is_written_again_after_the_shared_cache_comes_back(monkeypatch):
    from django.core.cache import caches
    from redis.exceptions import ConnectionError as RedisDown

    from core import progress

    # given: the shared cache away when the import starts and for its next heartbeat
    real, failures = caches["progress"], iter([RedisDown("paused")] * 2)

    class Blinking:
        def set(self, *args, **kwargs):
            if (failure := next(failures, None)) is not None:
                raise failure
            return real.set(*args, **kwargs)

        def get(self, *args, **kwargs):
            return real.get(*args, **kwargs)

    monkeypatch.setattr(progress, "_cache", Blinking)

    # when: the import runs and reports
    with progress.Progress("import:blink") as running:
        running.report(percent=50)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not progress.read("import:blink"):
            time.sleep(0.1)

    # then: its page reads the progress once the cache answers again
    assert progress.read("import:blink")["percent"] == 50


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_import_whose_heartbeat_is_late_but_whose_step_still_runs_is_not_failed(staff):
    """Found by an audit: a heartbeat late after a Redis blip made the page's poll fail
    the batch, which waited 53 s for the running step's lock, holding a web process."""
    from django.core.cache import caches
    from django.utils import timezone

    from core.models import ImportBatch
    from points.services import batches

    # given: an import running (its step holds the batch) whose heartbeat is 2 minutes old
    batch = ImportBatch.objects.create(
        kind="transactions",
        file_name="march.csv",
        uploaded_by=staff,
        status=ImportBatch.Status.IMPORTING,
        started_at=timezone.now(),
    )
    stale = {"percent": 40, "alive": time.time() - 120}
    caches["progress"].set(batches.progress_key(batch), stale)

    # when: its page asks how it goes
    with held_by_another(batch):
        started = time.monotonic()
        running = batches.state(batch)
        waited = time.monotonic() - started

    # then: at once, still running; failed only once no step holds it
    assert waited < 2 and running["done"] is False and running["percent"] == 40
    assert batches.state(batch)["status"] == ImportBatch.Status.FAILED


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("web_lock_timeout")
def test_a_confirm_meeting_members_another_import_holds_says_try_again_and_imports_once_later(
    client, login, member
):
    from tests.loyalty_site.test_permissions import confirm, upload

    # given: a file checked on Transactions > Import (run in the web request)
    login("CX agent")
    form = upload(client, f"T-1,{member.external_id},purchase,100,2026-03-01,,,\n")

    # when: it is confirmed while another import holds its member
    with held_by_another(member):
        waited = confirm(client, form)

    # then: a page saying to try again, and nothing imported
    assert waited.status_code == 503 and "Try again in a moment" in waited.content.decode()
    assert summary(member)["lifetime"] == 0

    # and sent again, it imports the file, once
    again = confirm(client, form)
    assert "Import finished: 1 new" in again.content.decode()
    assert summary(member)["lifetime"] == 100


def test_a_503_is_logged_on_one_line_whatever_the_address_holds(client, caplog, monkeypatch):
    """Found by an audit of hostile text: a line break sent as %0A in the address began a
    line of the sender's making in the log, while the database was away."""
    import logging

    from django.db import OperationalError

    from api.models import ApiKey

    def database_away(secret):
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr(ApiKey.objects, "get_from_key", database_away)
    forged = "ERROR django.security: admin password changed by 10.0.0.1"
    with caplog.at_level(logging.WARNING, logger="core.unavailable"):
        answer = client.get(
            "/api/v1/members/M-1%0A" + forged.replace(" ", "%20"),
            HTTP_AUTHORIZATION="Api-Key not-a-real-key",
        )
    assert answer.status_code == 503
    [line] = [r.getMessage() for r in caplog.records if r.name == "core.unavailable"]
    assert line.startswith("503 for /api/v1/members/M-1\\nERROR django.security: admin")
    assert "\n" not in line
