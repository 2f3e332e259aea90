"""Where an API purchase's CPU goes: this process's and its PostgreSQL backend's.

    DATABASE_URL=postgres://... python bench/api_cpu.py [--members 100000] \
        [--requests 2000] [--reuse]

Works in bench/api.py's scratch database (`--reuse` keeps the members either loaded).
In one process, one request after another, the CPU time per request (`process_time`,
and the backend's from /proc: Linux) of:
- a purchase in-process (record_purchase, as bench/purchases.py);
- the same through the API: POST /api/v1/transactions straight into Django's WSGI
  handler (no server, no socket), and one refused for want of a key (401);
- each piece of the API's own work, called alone as the view calls it: the key, the
  body's validation, the member by code, the summary (E2, D2), its rendering, the first
  answer kept (P8).
What the pieces leave of the POST is Django's and DRF's handling. bench/api.py's goal
(HTTP at least half the in-process rate) allows a whole request, gunicorn included,
twice the purchase's CPU.
"""

import logging
import os
import random
import time
from datetime import timedelta
from decimal import Decimal

from synthetic import api_scratch, start, wsgi_post


def backend_cpu() -> float:
    """Seconds of CPU this connection's PostgreSQL backend has used."""
    from django.db import connection

    connection.ensure_connection()
    fields = open(f"/proc/{connection.connection.info.backend_pid}/stat").read().split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def per_request(work, count: int) -> tuple[float, float]:
    """work(i) `count` times: (this process's, the backend's) CPU ms per call."""
    ours, theirs = time.process_time(), backend_cpu()
    for i in range(count):
        work(i)
    return (
        (time.process_time() - ours) * 1000 / count,
        (backend_cpu() - theirs) * 1000 / count,
    )


def main():
    os.environ |= {"SECURE_SSL_REDIRECT": "false", "API_RATE": "1000000/s"}
    os.environ |= {"ALLOWED_HOSTS": "127.0.0.1,testserver"}
    args, bands = start(__doc__, "api", requests=2000)
    secret = api_scratch(args, bands)
    logging.disable(logging.WARNING)  # each 401 would be logged

    from django.core.wsgi import get_wsgi_application
    from django.utils import timezone

    from api.models import ApiKey, FirstAnswer
    from api.serializers import TransactionRequest, checked
    from api.views.common import member_and_programme, member_summary, summary
    from members.models import Member
    from points.services import record_purchase

    app, rng, run, now = get_wsgi_application(), random.Random(1), time.time_ns(), timezone.now()

    def body(i) -> dict:
        return {
            "external_id": f"CPU-{run}-{i}",
            "member": f"S-{rng.randint(1, args.members):08d}",
            "kind": "purchase",
            "amount": f"{rng.randint(500, 20000) / 100:.2f}",
            "occurred_at": (now - timedelta(minutes=rng.randint(0, 43200))).isoformat(),
        }

    def post(i, key=True):
        """POST a new purchase; asserts the answer (201, or 401 without a key)."""
        status = wsgi_post(app, "/api/v1/transactions", body(i), secret if key else None)
        assert status.startswith("201" if key else "401"), status

    def in_process(i):
        record_purchase(
            member=Member(pk=rng.randint(1, args.members)),
            amount=Decimal(rng.randint(500, 20000)) / 100,
            occurred_at=now - timedelta(minutes=rng.randint(0, 43200)),
            external_id=f"CPU-IN-{run}-{i}",
            channel="pos",
        )

    def member(i):
        return member_and_programme(f"S-{rng.randint(1, args.members):08d}", field="member")

    found = [member(i) for i in range(50)]
    answer = member_summary(*found[0])
    rows = [
        ("a purchase in-process", in_process),
        ("a purchase through the API (WSGI)", post),
        ("refused without a key (401)", lambda i: post(i, key=False)),
        ("  the key", lambda i: ApiKey.objects.get_from_key(secret)),
        ("  the body's validation", lambda i: checked(TransactionRequest, body(i))),
        ("  the member by code", member),
        ("  the summary", lambda i: summary(*found[i % 50])),
        ("  the summary rendered", lambda i: member_summary(*found[i % 50])),
        ("  the first answer kept", lambda i: FirstAnswer.keep(f"CPU-FA-{run}-{i}", answer)),
    ]
    for _, work in rows:  # warm up: imports, the programme's cache, prepared statements
        for i in range(20):
            work(10_000_000 + i)
    print(f"PostgreSQL, {args.members:,} members; CPU ms per request, {args.requests:,} each")
    print(f"{'':38} {'Python':>7} {'PostgreSQL':>10}")
    for label, work in rows:
        python, database = per_request(work, args.requests)
        print(f"{label:38} {python:7.3f} {database:10.3f}")


if __name__ == "__main__":
    main()
