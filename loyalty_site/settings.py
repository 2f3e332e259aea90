"""Settings, read from the environment (django-environ).

Every default needs no server: SQLite and an embedded Celery broker. Production sets
DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...
"""

import ipaddress
import os
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from loyalty_site.env_file import read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
read_env_file()

DEBUG = env.bool("DEBUG", default=True)


def _required(name, value):
    """Production values have no default: fail at start-up, naming the variable."""
    if not value:
        raise ImproperlyConfigured(
            f"Set {name} in the environment: it is required when DEBUG is off."
        )
    return value


DEVELOPMENT_SECRET_KEY = "dev-only-insecure"


def _strong(key: str) -> str:
    """A production key signs sessions and forms: long, varied, not a known placeholder."""
    weak = (
        len(key) < 50
        or len(set(key)) < 10
        or key == DEVELOPMENT_SECRET_KEY
        or key.startswith("django-insecure")
    )
    if weak:
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use 50 or more random characters, e.g. "
            'python -c "from django.core.management.utils import get_random_secret_key;'
            ' print(get_random_secret_key())"'
        )
    return key


if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
else:
    SECRET_KEY = _strong(_required("SECRET_KEY", env("SECRET_KEY", default="")))
    ALLOWED_HOSTS = _required("ALLOWED_HOSTS", env.list("ALLOWED_HOSTS", default=[]))
# The keys before SECRET_KEY, while it is rotated: sessions and signed links they made
# stay good, and the customer codes erased under them are known again (code_digest).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Origins allowed to POST over HTTPS when they differ from the host, e.g.
# https://cx.example.com behind a proxy that rewrites the Host header.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. Off in development, on by default in production; each can be turned off
# through the environment (e.g. SECURE_SSL_REDIRECT=false when the load balancer
# already redirects).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The load balancer probes over plain HTTP: a redirect would read as a failure.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Behind a load balancer that ends TLS, Django sees plain HTTP: trust its
# X-Forwarded-Proto header, and only when the balancer sets it on every request.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): pages run only the site's own script files, so
# a script slipped into a page (a member's name, an uploaded file) never runs. Inline
# style attributes stay allowed (bar widths). Two inline scripts of libraries are
# allowed by their hashes; a new version that changes one fails
# tests/browser/test_content_security_policy_browser.py, which names the new hash.
LIBRARY_INLINE_SCRIPTS = [
    # django-import-export's export page: its "Select all" checkbox (onchange)
    "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='",
    # django-celery-beat's periodic task page: the schedule said in words
    "'sha256-QE3U2xYF7B4J2ro1/9oxiKhaWCGW39gB7ocQ/xlD0bE='",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_HASHES, *LIBRARY_INLINE_SCRIPTS],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

INSTALLED_APPS = [
    "loyalty_site.apps.CXManagerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "import_export",
    "django_celery_beat",
    "axes",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "tiers",
    "members",
    "points",
    "rewards",
    "api",
    "loyalty_site.apps.LoyaltySiteConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "loyalty_site.unavailable.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a lockout into a 429 page.
    "axes.middleware.AxesMiddleware",
]

# Messages wait in the session (the database), not in a cookie: a new API key or
# webhook secret, shown once in a message, would otherwise travel in the browser's next
# request, which proxies and balancers may log (signed, not encrypted).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Connections stay open between requests and tasks (seconds; 0 closes each one): opening
# one costs more than a purchase, and the purchase path's prepared statements live on
# the connection (core.db). A connection is checked before it is reused.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take the write lock when a transaction starts and wait for it, so that web,
    # worker and beat writing at once queue up instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )


# PostgreSQL settings each new session of a database takes, by alias (core.db: SET
# once connected, not in the URL's `options`, which PgBouncer refuses).
DATABASE_SESSION_SETTINGS: dict[str, dict[str, str]] = {}


if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The purchase path's statements run thousands of times per connection: PostgreSQL
    # parses and plans them once (core.db.fetch_prepared). Behind PgBouncer in
    # transaction mode, use PgBouncer 1.21+ with max_prepared_statements, or turn this off.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 0 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
    # A database that does not answer fails a new connection after 10 s, not never.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 10)
    # The web waits this long at most for a row another transaction holds (an import
    # holds its members' for minutes), then answers 503 "try again" instead of holding
    # a process: loyalty_site/wsgi.py sets it for the web. Workers wait: their jobs
    # queue behind each other by design.
    if _lock_wait := env("DATABASE_LOCK_TIMEOUT", default=""):
        DATABASE_SESSION_SETTINGS["default"] = {"lock_timeout": _lock_wait}

# Production migrates as the tables' owner and runs as a role that may not change or
# empty the ledger (docs/deploy.md): `migrate --database owner`, then `grant_app_role
# --database owner`. Without it one role does both, as in development.
if _migrate_url := env("MIGRATE_DATABASE_URL", default=""):
    DATABASES["owner"] = {**env.db_url_config(_migrate_url), "TEST": {"MIRROR": "default"}}
    if DATABASES["owner"]["ENGINE"].endswith("postgresql"):
        # A migration that waits for a table (an import or a nightly chunk of the running
        # release holding it) holds every request behind it: it gives up after
        # MIGRATE_LOCK_TIMEOUT instead, changing nothing, and is run again (deploy.md).
        DATABASE_SESSION_SETTINGS["owner"] = {
            "lock_timeout": env("MIGRATE_LOCK_TIMEOUT", default="15s")
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The CX Manager is the site: a login whose next= Django refuses (another host, a link
# copied from behind a proxy) lands on its dashboard, not on Django's /accounts/profile/.
LOGIN_REDIRECT_URL = "admin:index"

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Staff login protection: after AXES_FAILURE_LIMIT failed logins of one username from
# one address, that pair is refused (even with the right password) for
# AXES_COOLOFF_MINUTES, or until a superuser deletes the access attempt in the admin
# (0 = until then). By username and address together, so that one attacker cannot
# lock every staff member out, nor one office lock out a colleague.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30)) or None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Behind a load balancer, the address is the client's as the balancer saw it: set
# TRUSTED_PROXIES to the number of proxies that append to X-Forwarded-For (usually 1).
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "loyalty_site.client_ip.client_ip"
# No banner on every command and worker start.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["loyalty_site.formats"]  # 24-hour times in every list
# The programme's time zone: expiry cutoffs and date-only CSV rows are read in it.
TIME_ZONE = env("TIME_ZONE", default="Europe/Madrid")
USE_I18N = True
# Django's form messages reworded for staff ("Enter a valid date." names the format).
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Production serves static files from the app itself (whitenoise), from the files that
# `collectstatic` hashed and compressed; development serves them unprocessed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development and tests (DEBUG at start-up) serve them straight from the apps' folders,
# with no `collectstatic`.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# Uploaded import files: personal data, never served (MEDIA_ROOT is: reward images),
# read by the workers, so shared by web and workers (core.private_files).
IMPORTS_ROOT = Path(env("IMPORTS_ROOT", default=str(BASE_DIR / "imports")))

# Slow dashboard figures (points at stake at the next cutoff) are kept a few minutes.
# Per process by default; CACHE_URL=redis://... shares them between web processes.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# The progress of imports, written by the workers and read by the web: a folder by
# default (web and workers on one machine), the shared cache when there is one.
CACHES["progress"] = env.cache("CACHE_URL", default=f"filecache://{BASE_DIR / '.progress'}")
# A Redis that does not answer (packets dropped, not refused) costs each request at most
# CACHE_TIMEOUT_SECONDS, not the system's TCP timeout: the API then lets it through.
for cache in CACHES.values():
    if cache["BACKEND"].endswith("RedisCache"):
        cache["BACKEND"] = "core.redis_cache.RedisCache"  # one client, not one per call
        seconds = env.float("CACHE_TIMEOUT_SECONDS", default=0.5)
        cache.setdefault("OPTIONS", {}).update(
            socket_connect_timeout=seconds, socket_timeout=seconds
        )
# The largest file the CX Manager's import page takes (bytes; 1 GB).
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=1 << 30)
# Uploaded import files, and their error reports, are deleted after this many days.
IMPORT_FILE_DAYS = env.int("IMPORT_FILE_DAYS", default=30)

# Programme analytics: what one point costs the brand, to show outstanding points as a
# liability in money, and how far back the first daily snapshot reaches.
POINT_VALUE = env("POINT_VALUE", default="0.01")  # a Decimal, never a float
if not re.fullmatch(r"\d{1,4}(\.\d{1,6})?", POINT_VALUE):
    raise ImproperlyConfigured(
        'POINT_VALUE is what one point costs, in currency units: "0.01", at most "9999.999999".'
    )
POINT_VALUE = Decimal(POINT_VALUE)
POINT_VALUE_CURRENCY = env("POINT_VALUE_CURRENCY", default="EUR")
ANALYTICS_HISTORY_DAYS = env("ANALYTICS_HISTORY_DAYS", default="400")
if not re.fullmatch(r"[1-9]\d{0,3}", ANALYTICS_HISTORY_DAYS):  # beyond, a date before year 1
    raise ImproperlyConfigured(
        "ANALYTICS_HISTORY_DAYS is how many days back the first analytics snapshot reaches: "
        "1 to 9999."
    )
ANALYTICS_HISTORY_DAYS = int(ANALYTICS_HISTORY_DAYS)

# Celery. The default broker needs no server: kombu's filesystem transport in a
# folder of the project. Production sets CELERY_BROKER_URL=redis://...
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue = Path(env("CELERY_FILESYSTEM_FOLDER", default=str(BASE_DIR / ".celery")))
    for _folder in ("queue", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)
    # Messages written whole before a worker sees them (kombu's own, read half-written,
    # stopped the worker).
    CELERY_BROKER_TRANSPORT = "loyalty_site.queue_folder:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
        "control_folder": str(_queue / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A worker that dies mid-task leaves it to another: every task is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Expiry and degradation run over fixed-size ranges of member ids, one task each, so
# several workers share a large programme.
JOB_CHUNK_SIZE = env.int("JOB_CHUNK_SIZE", default=5_000)
# The queue the workers take tasks from and send them to: deployments (or test runs)
# sharing one Redis each give their own.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")

# Member messages. EMAIL_URL=smtp+tls://user:password@host:587 configures SMTP
# (django-environ's e-mail URL). Console in development; production requires EMAIL_URL
# (or an EMAIL_BACKEND named): printed to the worker's log, every message would put a
# member's address and name in it (found by an audit of erasure).
if env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    _console = "django.core.mail.backends.console.EmailBackend"
    EMAIL_BACKEND = _required("EMAIL_URL", env("EMAIL_BACKEND", default=_console if DEBUG else ""))
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / ".mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="loyalty@example.com")
# Seconds to wait for the mail server: one that takes the connection and never answers
# would hold a worker, and the outbox row it was sending, for ever (Django's default).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# The most points one manual adjustment may add or remove (P6): a typo of a few
# zeros is refused, not credited.
MAX_ADJUSTMENT_POINTS = env.int("MAX_ADJUSTMENT_POINTS", default=100_000)

# What a transaction may be: an amount of at most MAX_TRANSACTION_AMOUNT (a typo of a few
# digits in a till or a file is refused, not credited), dated from PROGRAMME_START
# (midnight in TIME_ZONE) to a day after now.
MAX_TRANSACTION_AMOUNT = Decimal(env("MAX_TRANSACTION_AMOUNT", default="100000.00"))
if not 0 < MAX_TRANSACTION_AMOUNT < 10_000_000_000:  # what Transaction.amount can hold
    raise ImproperlyConfigured("MAX_TRANSACTION_AMOUNT must be above 0 and below 10,000,000,000.")
PROGRAMME_START = date.fromisoformat(env("PROGRAMME_START", default="2000-01-01"))

# The integration API (api/): keys, exact JSON, problem+json errors, a rate per key.
API_RATE = env("API_RATE", default="1200/min")  # per key, shared by every process
# django-ratelimit reads a period's first letter: "1200/month" would be a minute.
_PERIOD = r"(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)"
if not re.fullmatch(rf"[1-9]\d*/([1-9]\d*)?{_PERIOD}", API_RATE):  # no period of 0 min
    raise ImproperlyConfigured('API_RATE is requests per period: "1200/min", "20/s", "50000/day".')
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# How long an exact repeat of a transaction gets the first answer's body again (P8);
# later, the figures as they are then. A daily job drops older answers.
API_REPEAT_ANSWER_DAYS = env.int("API_REPEAT_ANSWER_DAYS", default=30)
# How long a webhook receiver may take to answer before the attempt counts as failed.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
# The certificate authorities a webhook receiver's certificate may come from, as a file
# or folder (a brand's own CA for a CRM on its network): certifi's by default, or the
# file REQUESTS_CA_BUNDLE names, as for requests itself (the sender reads no other
# setting of the environment). It replaces certifi's list: a file of the public CAs and
# the brand's. One that is not there stops the start (every https post would fail).
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default=os.environ.get("REQUESTS_CA_BUNDLE", ""))
if WEBHOOK_CA_BUNDLE and not Path(WEBHOOK_CA_BUNDLE).exists():
    raise ImproperlyConfigured(f"WEBHOOK_CA_BUNDLE: there is no file or folder {WEBHOOK_CA_BUNDLE}")
# Networks webhooks are never sent to (api.refused_networks): this machine and the
# link-local network (a cloud's metadata service). A brand may add its private ranges;
# a network that is not one stops the start, naming it.
WEBHOOK_REFUSED_NETWORKS = [
    ipaddress.ip_network(network.strip())
    for network in env.list(
        "WEBHOOK_REFUSED_NETWORKS",
        default=["127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10"],
    )
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.ExactJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.authentication.KeyFirstNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerKeyThrottle"],
    "EXCEPTION_HANDLER": "api.errors.problem_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    # "?format=xml" is no way to choose an answer here: the Accept header is.
    "URL_FORMAT_OVERRIDE": None,
    # Non-ASCII as \u escapes: an error that repeats what it was sent (a choice, a field
    # name) can hold a lone surrogate, which UTF-8 cannot encode.
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty integration API",
    "DESCRIPTION": "For tills, web shops and apps: members, purchases, returns, actions, "
    "rewards and their vouchers. Authenticate with `Authorization: Api-Key <key>`.\n\n"
    "Every error is `application/problem+json` (RFC 9457). Besides those each operation "
    "lists, a method a path does not take answers 405, naming the methods it takes in "
    "`Allow` (on a resource, with a valid key: without one, 401 comes first).",
    "VERSION": "1",
    # 3.1: a field that may be null says so in a way strict validators and client
    # generators read (3.0's `nullable` beside an `allOf` of a component is a no-op).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from the app's own static files, no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A voucher's status has one name wherever it shows (a voucher, a redemption).
    "ENUM_NAME_OVERRIDES": {
        "VoucherStatusEnum": "rewards.models.VoucherStatus",
        "ChannelEnum": "points.models.Channel",  # a transaction's and a voucher use's
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.views.common.retry_after_declared",
    ],
}

# django-import-export: importing transactions needs the "add transaction" permission,
# exporting needs "view".
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
