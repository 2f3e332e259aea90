"""Synthetic members for the benchmarks, written with PostgreSQL COPY.

Each benchmark works in its own scratch database, dropped and created afresh: the
name of DATABASE_URL's database plus a suffix (e.g. loyalty_bench_expiry).
"""

import multiprocessing
import os
import secrets
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loyalty"


_all_set = None  # in_parallel's barrier: its processes inherit it when forked
_started = 0.0


def in_parallel(function, jobs: list) -> tuple[list, float]:
    """function(job) in one forked process per job: their results, and the seconds from
    the moment every process was set up (each calls `ready()` once connected and warm)
    to the last one's end. Forking, connecting and warming up are not timed."""
    global _all_set
    context = multiprocessing.get_context("fork")
    _all_set = context.Barrier(len(jobs))
    with context.Pool(len(jobs)) as pool:
        timed = pool.map(_timed, [(function, job) for job in jobs])
    results, starts, ends = zip(*timed, strict=True)
    return list(results), max(ends) - min(starts)


def ready() -> None:
    """In in_parallel's work, once set up: wait for the other processes; the time starts."""
    global _started
    _all_set.wait(timeout=600)
    _started = time.monotonic()  # system-wide: comparable between the processes


def _timed(function_and_job):
    function, job = function_and_job
    try:
        result = function(job)
    except BaseException:
        _all_set.abort()  # the others, waiting in ready(), stop at once too
        raise
    return result, _started, time.monotonic()


def setup_scratch_database(suffix: str, *, reuse: bool = False) -> str:
    """Create an empty scratch database (or, with `reuse`, keep the one a previous run
    loaded), point Django at it, migrate. Returns its name."""
    import psycopg

    url = urlparse(os.environ.get("DATABASE_URL", DEFAULT_URL))
    if not url.scheme.startswith("postgres"):
        sys.exit("The benchmarks run on PostgreSQL: set DATABASE_URL=postgres://...")
    name = f"{url.path.lstrip('/') or 'loyalty'}_bench_{suffix}"
    admin = urlunparse(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not (reuse and exists):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    # The benchmarks' webhook receivers listen on this machine (a cloud's metadata stays
    # refused), as the tests' do.
    os.environ.setdefault("WEBHOOK_REFUSED_NETWORKS", "169.254.0.0/16,fe80::/10")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return name


def start(description: str, suffix: str, *, members: int = 100_000, **options: int):
    """Parse --members (default `members`, and an integer option per keyword, with its
    default), set up the scratch database and the seed programme. Returns the arguments
    and the tiers as (id, threshold), Bronze to Platinum."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--members", type=int, default=members)
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data a previous run loaded (same sizes)"
    )
    args = parser.parse_args()
    setup_scratch_database(suffix, reuse=args.reuse)
    from core.db import keep_statistics
    from loyalty_site.demo import load_programme
    from tiers.models import Tier

    tiers = load_programme()
    keep_statistics(Tier)  # as each change of tiers and the nightly requalification do
    bands = [(tiers[c].pk, tiers[c].threshold) for c in ("bronze", "silver", "gold", "platinum")]
    return args, bands


def free_host() -> str:
    """127.0.0.1 and a port no other process listens on, for a web server of this run:
    a fixed port would reach another run's server (and its database)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def wait_for_web(url: str, log: Path) -> None:
    """Until the web at `url` answers /healthz (30 s at most; then exit with its log)."""
    import urllib.request

    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/healthz", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the web did not answer /healthz:\n{log.read_text()[-2000:]}")


@contextmanager
def timed(label: str):
    started = time.perf_counter()
    yield
    print(f"{label:<28} {time.perf_counter() - started:8.2f} s")


def copy_rows(table: str, columns: list[str], rows) -> None:
    """COPY rows (tuples) into a table on Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


MEMBER_COLUMNS = [
    "id",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "joined_at",
    "qualified_tier_id",
    "effective_tier_id",
    "best_tier_id",
    "points_balance",
    "lifetime_points",
    "last_purchase_at",
]


HISTORY_COLUMNS = [
    "member_id",
    "reason",
    "from_tier_id",
    "to_tier_id",
    "qualified_tier_id",
    "changed_at",
]


LEDGER_COLUMNS = [
    "member_id",
    "definition_id",
    "kind",
    "points",
    "counts_toward_tier",
    "redeemable",
    "issued_at",
    "accrue_at",
    "reason",
    "created_at",
]


# A redemption (a voucher) as bench/vouchers.py and bench/staff_work.py load them.
REDEMPTION_COLUMNS = [
    "id",
    "member_id",
    "reward_id",
    "points",
    "status",
    "redeemed_at",
    "entry_id",
    "code",
    "valid_until",
    "value",
    "used_at",
    "used_external_id",
    "used_channel",
    "used_store",
    "cancelled_at",
    "reward_name",
    "took_unit",
]


def api_scratch(args, bands) -> str:
    """bench/api.py's scratch database: its members (unless --reuse) over the tiers, as
    bench/purchases.py's, degradation and quarterly expiry on (so that the summary works
    out both), and a new key: its secret."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    from api.services import create_api_key
    from points.models import ExpiryPolicy
    from tiers.models import DegradationPolicy

    now, rng = timezone.now(), random.Random(2)

    def rows():  # as bench/purchases.py: members over the tiers, the seed's campaign on
        for pk in range(1, args.members + 1):
            tier, threshold = bands[rng.choices(range(4), weights=(50, 30, 15, 5))[0]]
            lifetime = threshold + rng.randint(0, 900)
            joined = now - timedelta(days=rng.randint(30, 900))
            yield pk, joined, tier, lifetime, lifetime, joined

    if not args.reuse:
        copy_members(rows())
    DegradationPolicy.objects.update_or_create(pk=1, defaults={"enabled": True})
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "quarterly", "starts_on": timezone.localdate()}
    )
    _, secret = create_api_key(name=f"bench {now:%H:%M:%S}", channel="pos", store="BENCH")
    return secret


def wsgi_post(app, path: str, body: dict, secret: str | None) -> str:
    """POST `body` as JSON straight into a WSGI app (no HTTP server, no socket), with the
    API key `secret` (none if None): the answer's status line."""
    import io
    import json

    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.input": io.BytesIO(raw),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
    }
    if secret:
        environ["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    statuses = []
    b"".join(app(environ, lambda status, *_: statuses.append(status)))
    return statuses[0]


def copy_members(rows) -> None:
    """rows: (id, joined_at, tier_id, balance, lifetime, last_purchase_at)."""
    copy_rows(
        "members_member",
        MEMBER_COLUMNS,
        (
            (
                pk,
                f"S-{pk:08d}",
                f"s{pk}@example.com",
                "",
                "",
                "",
                joined,
                tier,
                tier,
                tier,
                balance,
                lifetime,
                last,
            )
            for pk, joined, tier, balance, lifetime, last in rows
        ),
    )
    reset_sequence("members_member")


def reset_sequence(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )
    vacuum(table)


def vacuum(table: str) -> None:
    """VACUUM ANALYZE a freshly loaded table, as autovacuum would in production."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")


@contextmanager
def counting_queries():
    """Records the statements Django sends while the block runs, with their time:
    yields a list of (seconds, sql)."""
    from django.db import connection

    seen = []

    def count(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seen.append((time.perf_counter() - started, " ".join(sql.split())))

    with connection.execute_wrapper(count):
        yield seen


def print_slowest(statements, count=4) -> None:
    for seconds, sql in sorted(statements, reverse=True)[:count]:
        print(f"  {seconds:7.2f} s  {sql[:90]}")


def page_settings():
    """The settings pages are timed with: production's static storage needs
    `collectstatic`, and HTTPS is not what is timed."""
    from django.test import override_settings

    storages = {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return override_settings(STORAGES=storages, SECURE_SSL_REDIRECT=False)


def time_pages(client, pages, *, width: int = 28, repeats: int = 5, check=None) -> None:
    """Print each page's server time through Django's test client (median and slowest
    of `repeats` requests after a warm-up) and its number of queries. `check(url,
    response)` asserts what a page must show."""
    import statistics

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    print(f"{'page':<{width}} {'median':>8} {'slowest':>8} {'queries':>8}")
    with page_settings():
        for label, url in pages:
            assert client.get(url).status_code == 200, url
            times = []
            for _ in range(repeats):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - started)
                assert response.status_code == 200, url
                if check:
                    check(url, response)
            print(
                f"{label:<{width}} {1000 * statistics.median(times):7.0f} ms "
                f"{1000 * max(times):7.0f} ms {len(queries):8}"
            )
