"""Production set-up: deploy checks, required secrets, static files, staff login lockout,
and the load balancer's /healthz."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from loyalty_site import health

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


def production_env(**overrides):
    """The environment of a production process: DEBUG off, a real secret, a host."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "cx.example.com",
        "EMAIL_URL": "smtp+tls://loyalty:secret@mail.example.com:587",
    }
    env.update(overrides)
    return env


def python(*args, env):
    """This Python in the project's folder, with `env`: its output as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def manage(*args, env):
    return python("manage.py", *args, env=env)


def read_settings(*, env):
    """The settings read as every process's start reads them (manage.py, gunicorn,
    Celery), without Django's checks: a value they refuse stops the start there."""
    return python("-c", "import loyalty_site.settings", env=env)


def test_check_deploy_reports_nothing_under_production_settings():
    # when
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_owner_s_lock_timeout_leaves_the_options_its_url_gives():
    """Found by a review: MIGRATE_LOCK_TIMEOUT replaced the `options` of the owner's URL
    (a search_path, say), and the migration ran in another schema. The timeout is set
    once connected (core.db), and the URL's options stay as given."""
    owner = "postgres://owner@127.0.0.1:5432/loyalty?options=-c%20search_path%3Dloyalty"
    shown = (
        "from django.conf import settings; print(settings.DATABASES['owner']['OPTIONS']);"
        " print(settings.DATABASE_SESSION_SETTINGS['owner'])"
    )
    env = {**os.environ, "MIGRATE_DATABASE_URL": owner, "MIGRATE_LOCK_TIMEOUT": "7s"}

    result = manage("shell", "-v", "0", "-c", shown, env=env)

    assert result.returncode == 0, result.stderr
    assert "'options': '-c search_path=loyalty'}" in result.stdout
    assert "{'lock_timeout': '7s'}" in result.stdout


@pytest.mark.parametrize("variable", ["SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_URL"])
def test_start_up_without_a_production_secret_fails_naming_it(variable):
    # when: empty rather than unset, so that a local .env cannot fill it in
    result = read_settings(env=production_env(**{variable: ""}))

    # then
    assert result.returncode != 0
    assert f"ImproperlyConfigured: Set {variable} in the environment" in result.stderr


def test_static_files_are_collected_hashed_and_served_by_the_app(tmp_path):
    # given: collectstatic under production settings
    env = production_env(STATIC_ROOT=str(tmp_path))
    collected = manage("collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    assert hashed != "admin/css/base.css" and (tmp_path / f"{hashed}.gz").exists()

    # when: a production process asks for the hashed file
    script = (
        "import django; django.setup();"
        "from django.test import Client;"
        f"r = Client().get('/static/{hashed}', secure=True, HTTP_HOST='cx.example.com');"
        "print(r.status_code, r.headers['Cache-Control'])"
    )
    served = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "loyalty_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then: whitenoise answers, with a far-future cache for a hashed name
    assert served.stdout.split(maxsplit=1) == ["200", "max-age=315360000, public, immutable\n"]


@pytest.fixture
def agent(django_user_model):
    return django_user_model.objects.create_user(
        "desk-agent", "desk@example.com", "right-password", is_staff=True
    )


def admin_login(client, password):
    return client.post(
        reverse("admin:login"), {"username": "desk-agent", "password": password, "next": "/admin/"}
    )


@pytest.mark.django_db
@pytest.mark.parametrize("unsafe", ["https://evil.example.com/admin/", "//evil.example.com"])
def test_a_login_whose_next_is_refused_lands_on_the_dashboard(client, agent, unsafe):
    """Found by a security review: Django refused the other host, then sent the agent,
    logged in, to /accounts/profile/, a 404."""
    login = reverse("admin:login")
    answer = client.post(
        login, {"username": "desk-agent", "password": "right-password", "next": unsafe}
    )

    assert answer.status_code == 302 and answer.url == reverse("admin:index")


@pytest.mark.django_db
def test_staff_user_is_locked_out_after_the_configured_failed_logins(client, agent):
    # given: one failure short of the limit, the right password still works
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert admin_login(client, "wrong").status_code == 200
    assert admin_login(client, "right-password").status_code == 302
    client.logout()

    # when: the limit of failures in a row is reached
    responses = [admin_login(client, "wrong") for _ in range(settings.AXES_FAILURE_LIMIT)]

    # then: locked out, and even the right password is refused
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert responses[-1].status_code == 429
    refused = admin_login(client, "right-password")
    assert refused.status_code == 429 and b"too many login attempts" in refused.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_behind_the_balancer_one_address_locked_out_leaves_another_in(client, agent, settings):
    """Every login reaches the app from the balancer's address: keyed on it, five typos
    by anyone locked the agent out everywhere (security audit). The address counted is
    the one the balancer appends, whatever a client writes before it."""
    # given: one balancer in front of the app
    settings.TRUSTED_PROXIES = 1

    def login_from(address, password, spoofed=""):
        forwarded = f"{spoofed}, {address}" if spoofed else address
        return client.post(
            reverse("admin:login"),
            {"username": "desk-agent", "password": password, "next": "/admin/"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    # when: someone at 203.0.113.9 fails the limit, writing other addresses first
    failed = [
        login_from("203.0.113.9", "wrong", spoofed=f"198.51.100.{n}")
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    # then: that address is locked out; the agent at the shop's address logs in
    assert failed[-1].status_code == 429
    assert login_from("203.0.113.9", "right-password").status_code == 429
    assert login_from("192.0.2.40", "right-password").status_code == 302


@pytest.mark.django_db
def test_superuser_sees_the_lockout_in_the_admin(client, agent, admin_user):
    # given
    for _ in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, "wrong")

    # when
    client.force_login(admin_user)
    attempts = client.get(reverse("admin:axes_accessattempt_changelist"))
    app = client.get(reverse("admin:app_list", args=["axes"]))

    # then
    assert attempts.status_code == 200
    assert b"desk-agent" in attempts.content and b"Locked Out" in attempts.content
    assert b"Access attempts" in app.content


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    # when
    response = client.get("/healthz")

    # then: no login needed
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL=UNREACHABLE_BROKER)
def test_healthz_answers_503_naming_an_unreachable_broker(client):
    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unavailable"}


@pytest.mark.django_db
def test_healthz_answers_503_naming_a_failing_database(client, monkeypatch):
    # given
    def refused():
        raise OSError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", refused)

    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_healthz_answers_plain_http_while_the_rest_redirects_to_https(client):
    # then: the load balancer probes over HTTP
    assert client.get("/healthz").status_code == 200
    assert client.get(reverse("admin:login")).status_code == 301


@pytest.mark.parametrize(
    "key",
    ["dev-only-insecure", "short-key", "a" * 60, "django-insecure-" + "x7Kq2" * 10],
    ids=["placeholder", "short", "one-letter", "django-insecure"],
)
def test_production_refuses_a_weak_or_placeholder_secret_key(key):
    # when
    result = read_settings(env=production_env(SECRET_KEY=key))

    # then
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production" in result.stderr


@pytest.mark.parametrize(
    "rate",
    ["1200", "0/min", "fast", "1200/minute/key", "5/0m", "5/00min", "100000/month", "1200/ms"],
)
def test_a_malformed_api_rate_stops_the_start_with_the_format(rate):
    # when
    result = read_settings(env=production_env(API_RATE=rate))

    # then
    assert result.returncode != 0
    assert 'API_RATE is requests per period: "1200/min"' in result.stderr


def test_api_rates_of_every_period_are_accepted():
    for rate in ("20/s", "1200/min", "5000/hour", "50000/day", "100/10m", "20/second", "3/days"):
        assert read_settings(env=production_env(API_RATE=rate)).returncode == 0, rate


@pytest.mark.parametrize("value", ["0", "-5", "1000000", "400 days", "1.5"])
def test_an_analytics_history_out_of_range_stops_the_start(value):
    """Found by an audit: 1000000 made every nightly snapshot fail (a date before year
    1), 0 or -5 made it take no day, silently, for ever."""
    result = read_settings(env=production_env(ANALYTICS_HISTORY_DAYS=value))
    assert result.returncode != 0
    assert "ANALYTICS_HISTORY_DAYS is how many days back" in result.stderr
    assert read_settings(env=production_env(ANALYTICS_HISTORY_DAYS="9999")).returncode == 0


@pytest.mark.parametrize("value", ["1E+27", "-0.01", "0,01", "cheap", "0.0000001", "12345"])
def test_a_point_value_out_of_shape_stops_the_start_with_the_format(value):
    # when
    result = read_settings(env=production_env(POINT_VALUE=value))

    # then: at start, not as a 500 on the analytics page
    assert result.returncode != 0
    assert 'POINT_VALUE is what one point costs, in currency units: "0.01"' in result.stderr


def test_point_values_from_nothing_to_a_fortune_are_accepted():
    for value in ("0", "0.005", "1", "9999.999999"):
        assert read_settings(env=production_env(POINT_VALUE=value)).returncode == 0, value


def test_a_webhook_ca_bundle_that_is_not_there_stops_the_start_naming_it(tmp_path):
    """Found by a review: a path mistyped, every https webhook failed unexplained."""
    missing = tmp_path / "brand-ca.pem"

    result = read_settings(env=production_env(WEBHOOK_CA_BUNDLE=str(missing)))

    assert result.returncode != 0
    assert f"WEBHOOK_CA_BUNDLE: there is no file or folder {missing}" in result.stderr
    missing.write_text("")
    assert read_settings(env=production_env(WEBHOOK_CA_BUNDLE=str(missing))).returncode == 0


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/docs/"])
def test_pages_run_only_the_sites_own_scripts(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))

    assert directives["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


def test_the_web_s_access_log_keeps_no_search_terms_or_referrers(tmp_path):
    """Found by an audit of erasure: the access log kept every search staff typed
    (/admin/members/member/?q=zebulon%40example.org, a phone, a name), for as long as
    the logs are kept, erased customers' too."""
    import socket
    import time
    import urllib.request

    from tests.loyalty_site.test_outages import procfile_command

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    log = tmp_path / "access.log"
    command = procfile_command("web").replace("--access-logfile -", f"--access-logfile {log}")
    environment = production_env(  # the Procfile turns DEBUG off, as make serve does
        HOST=f"127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",  # no balancer in front here
        WEB_CONCURRENCY="1",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # as make serve
    )
    server = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], cwd=ROOT, env=environment)
    try:
        asked = urllib.request.Request(
            f"http://127.0.0.1:{port}/robots.txt?q=zebulon%40example.org+699123456",
            headers={"Referer": "https://cx.example.com/admin/?q=Quixotaxe"},
        )
        for _ in range(100):  # until gunicorn listens
            try:
                urllib.request.urlopen(asked, timeout=5)
            except urllib.error.HTTPError:
                break  # answered (404)
            except OSError:
                time.sleep(0.1)
        for _ in range(50):
            if log.exists() and log.read_text():
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # then: the request is logged, without what was searched or where it came from
    line = log.read_text()
    assert '"GET /robots.txt HTTP/1.1" 404' in line
    assert "zebulon" not in line and "699123456" not in line and "Quixotaxe" not in line


def test_web_worker_and_beat_run_with_debug_off_and_no_owner_url_whatever_env_says(tmp_path):
    """Found by an operator's walkthrough: honcho gives .env the last word over the
    environment, and `make serve`'s empty MIGRATE_DATABASE_URL came back in every
    process from .env: web, worker and beat held the owner's credentials."""
    import re
    import signal

    from tests.loyalty_site.test_outages import procfile_command

    # given: an .env that names the owner and turns DEBUG on; each process of
    # Procfile.prod with its program replaced by one that says what it was given
    (tmp_path / ".env").write_text(
        "MIGRATE_DATABASE_URL=postgres://owner:secret@db/x\nDEBUG=true\n"
    )
    shown = 'repr(os.environ.get("MIGRATE_DATABASE_URL")), os.environ.get("DEBUG")'
    says = f"python3 -c 'import os; print(\"GIVEN\", {shown})'; sleep 60"
    lines = [
        f"{name}: " + re.sub(r"(gunicorn|celery) [^;]*", says, procfile_command(name), count=1)
        for name in ("web", "worker", "beat")
    ]
    (tmp_path / "Procfile").write_text("\n".join(lines) + "\n")
    honcho = Path(sys.executable).parent / "honcho"

    # when
    started = subprocess.Popen(
        [str(honcho), "start"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    given = []
    try:
        for line in started.stdout:
            if "GIVEN" in line:
                given.append(line.split("GIVEN", 1)[1].strip())
            if len(given) == 3:
                break
    finally:
        os.killpg(started.pid, signal.SIGTERM)
        started.wait(timeout=30)

    # then
    assert given == ["'' false"] * 3
