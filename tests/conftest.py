import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_network
from itertools import count
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections, transaction
from django.utils import timezone

from loyalty_site.demo import load_programme
from members.models import Member
from members.services import enroll_member
from points.models import LedgerEntry, PointDefinition, Transaction
from points.selectors import points_summary
from points.services import adjust_points, record_purchase, record_return
from tiers.models import Tier

MADRID = ZoneInfo("Europe/Madrid")
_ids = count(1)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


def session_of_its_own():
    """A PostgreSQL session of its own on the test database (psycopg: a transaction is
    open until its commit or rollback), for a test's other worker or till. Use it in a
    `with` block: closed whatever happens, its locks never outlive the test."""
    database = connection.settings_dict
    return psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    )


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs `pytest -n auto`, at most 8), each worker has
    its own test database (pytest-django) and here its own caches: tests clear the cache
    and count API rates in it, and one worker's import 1 is not the other's. On Redis,
    worker gwN takes the CACHE_URL's database number + N, and passes it on to the Celery
    workers its tests start."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...; unset without xdist
    if not worker:
        return
    from django.conf import settings
    from django.test import override_settings

    n = int(worker.removeprefix("gw"))
    caches = {name: dict(cache) for name, cache in settings.CACHES.items()}
    for cache in caches.values():
        location = cache.get("LOCATION", "")
        if location.startswith("redis://"):
            base, _, db = location.rpartition("/")
            cache["LOCATION"] = f"{base}/{int(db or 0) + n}"
            os.environ["CACHE_URL"] = cache["LOCATION"]
        elif cache["BACKEND"].endswith("FileBasedCache"):
            cache["LOCATION"] = f"{location}/{worker}"
    override_settings(CACHES=caches).enable()  # for the whole run


def run_together(count, work):
    """Start `count` threads at the same moment, each calling work(i); returns what each
    returned or raised."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the tests inspect what was raised
            results[i] = exc
        finally:
            connections.close_all()  # the thread's own: kept open otherwise (CONN_MAX_AGE)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextmanager
def held_by_another(row):
    """Another transaction holding the row (a member an import holds, say) until the
    block ends: a committed row (django_db(transaction=True)), on PostgreSQL."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            type(row).objects.select_for_update().get(pk=row.pk)
            held.set()
            release.wait(30)
        connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@pytest.fixture
def web_lock_timeout():
    """The connection waits for a row lock as the web's do (DATABASE_LOCK_TIMEOUT),
    shortened to 0.3 s."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")


def local_time(when: str | datetime) -> datetime:
    """A time on the programme's clock (Europe/Madrid): local_time("2026-03-03 14:00"),
    or a naive datetime. Given in UTC, as timezone.now() gives it: code reading the day
    with `.date()` rather than in the programme's time zone reads the wrong one after
    midnight in Madrid."""
    naive = datetime.fromisoformat(when) if isinstance(when, str) else when
    return naive.replace(tzinfo=MADRID).astimezone(UTC)


def at(day: str, hour: int = 12) -> datetime:
    """A fixed time, at that hour on the programme's clock: at("2026-03-01")."""
    return local_time(datetime.fromisoformat(day).replace(hour=hour))


@pytest.fixture
def tiers(db):
    """The seed programme: Bronze 0 x1, Silver 1,000 x1.5, Gold 3,000 x2, Platinum 8,000 x3,
    with tier-up bonuses of 0, 100, 250 and 500."""
    return load_programme()


@pytest.fixture
def no_campaigns(tiers):
    from points.models import Campaign

    Campaign.objects.all().delete()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("agent", "agent@example.com", "pw", is_staff=True)


@pytest.fixture
def login(client, django_user_model):
    """Log a client in as a staff user of a role ("CX agent", "Marketer"; None: no group)."""

    def login(role):
        name = (role or "no-group").lower().replace(" ", "-")
        user = django_user_model.objects.create_user(name, is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return user

    return login


@pytest.fixture
def make_member(tiers, no_campaigns):
    def make(code=None, joined_at=None):
        code = code or f"M-T{next(_ids):05d}"
        return enroll_member(
            external_id=code, email=f"{code.lower()}@example.com", joined_at=joined_at
        )

    return make


@pytest.fixture
def member(make_member):
    return make_member()


@pytest.fixture
def keep(make_member):
    """The account the customer keeps."""
    return make_member("M-KEEP")


@pytest.fixture
def old(make_member):
    """The account the customer no longer uses."""
    return make_member("M-OLD")


@pytest.fixture
def buy():
    """Record a purchase with a fresh external id, as it happens (recorded at its own
    time, unless `now` says when: a late purchase restores only what its date leaves,
    D3); returns the transaction."""

    def buy(member, amount, when=None, **kwargs):
        when = when or at("2026-03-02")
        return record_purchase(
            member=member,
            amount=Decimal(str(amount)),
            occurred_at=when,
            external_id=kwargs.pop("external_id", f"P-{next(_ids)}"),
            now=kwargs.pop("now", when),
            **kwargs,
        )

    return buy


def give_return(member, original, amount, when=None, external_id=None):
    """Record a return of part of `original` (a purchase transaction)."""
    return record_return(
        member=member,
        amount=Decimal(amount),
        occurred_at=when or at("2026-03-10"),
        external_id=external_id or f"R-{original.external_id}-{amount}-{when}",
        original_external_id=original.external_id,
    )


def earned(txn) -> int:
    """Points of the transaction's earn or return entry."""
    return sum(
        e.points for e in LedgerEntry.objects.filter(transaction=txn, kind__in=["earn", "return"])
    )


def ledger_state():
    """What a failed operation must leave as it was: rows and every member's caches."""
    return (
        LedgerEntry.objects.count(),
        Transaction.objects.count(),
        list(Member.objects.values_list("points_balance", "lifetime_points").order_by("pk")),
    )


def summary(member, now=None):
    return points_summary(member, now=now or at("2030-01-01"))


def definition(handle) -> PointDefinition:
    return PointDefinition.objects.get(handle=handle)


@pytest.fixture(autouse=True)
def cache_outage_not_yet_logged(monkeypatch):
    """Each test sees the first log line of a cache outage (core.unavailable logs one a
    minute per process)."""
    monkeypatch.setattr("core.unavailable._cache_logged_at", float("-inf"))


@pytest.fixture(autouse=True)
def fresh_cache():
    """Figures the dashboard keeps for a few minutes never leak from one test to another."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def quick_password_hashing(settings):
    """Staff users made by tests (a superuser each for hundreds of them) are hashed
    quickly: PBKDF2's million rounds, right for production, cost a quarter of a second
    each and test nothing of ours (Django's advice for test settings)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def webhooks_to_this_machine(settings):
    """The tests' webhook receivers listen on 127.0.0.1, which production refuses
    (WEBHOOK_REFUSED_NETWORKS); the cloud's metadata stays refused. The tests of the
    refusal set the production default again (tests/api/test_webhook_networks.py)."""
    settings.WEBHOOK_REFUSED_NETWORKS = [ip_network("169.254.0.0/16"), ip_network("fe80::/10")]


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Files a test stores (an import's file, kept as a batch; a reward's image) go to
    its own folders, not the checkout's imports/ and media/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORTS_ROOT = tmp_path / "imports"


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what is queued after commit (the workers' tasks, in-process)."""

    def run(action):
        with django_capture_on_commit_callbacks(execute=True):
            return action()

    return run


@pytest.fixture(autouse=True)
def celery_eager():
    """Unit tests run tasks in-process; the worker test sends them through the broker."""
    from loyalty_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def degradation():
    """The degradation policy, enabled with the defaults (90 days, one level)."""
    from tiers.models import DegradationPolicy

    policy = DegradationPolicy.current()
    policy.enabled = True
    policy.save()
    return policy


@pytest.fixture
def catalogue(tiers):
    """The demo catalogue, by name."""
    from loyalty_site.demo import load_catalogue
    from rewards.models import Reward

    load_catalogue(tiers)
    return {r.name: r for r in Reward.objects.all()}


@pytest.fixture(autouse=True)
def fresh_subscriptions():
    """Which webhook endpoints want which events is read again in each test."""
    from core import events

    events.subscriptions_changed()
    yield
    events.subscriptions_changed()


@pytest.fixture
def rich(member, staff):
    """A Bronze member with 5,000 points available, given a year ago."""
    adjust_points(
        member=member,
        points=5_000,
        reason="Welcome",
        by=staff,
        now=timezone.now() - timedelta(days=365),
    )
    return member


def earning_at_the_bounds(*, campaigns: int, starts_at, ends_at) -> None:
    """The highest rates a marketer may type: Purchase points at 100 points per unit,
    every tier x100, and `campaigns` campaigns of x100 each running from `starts_at`
    to `ends_at`, for every tier and channel."""
    from points.models import Campaign

    PointDefinition.objects.filter(handle="purchase-points").update(earn_rate=100)
    Tier.objects.update(multiplier=100)
    for n in range(1, campaigns + 1):
        Campaign.objects.create(
            name=f"Hundredfold {n}", multiplier=100, starts_at=starts_at, ends_at=ends_at
        )
