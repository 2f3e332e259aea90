"""Purchases per second through the integration API on gunicorn, against in-process.

    DATABASE_URL=postgres://... python bench/api.py [--members 100000] [--seconds 15] \
        [--connections 4] [--workers $WEB_CONCURRENCY or 2] [--threads $WEB_THREADS or 4] \
        [--purchases 6000] [--conn_max_age N]

Works in a scratch database (see synthetic.py) with bench/purchases.py's members, and
degradation and quarterly expiry on. Records --purchases purchases through
record_purchase over --workers processes (purchases.py's in-process rate), and as many
POSTs straight into Django's WSGI handler over as many processes (the contract's own
work: key, member, summary, first answer; no server, no socket), each timed from when
every process is connected and has made 20 warm-up requests; then starts
gunicorn as Procfile.prod does (--workers processes of --threads threads, 127.0.0.1, a
free port) and
drives it with wrk (one thread, a Lua script: a unique external_id per request, random
members): POST /api/v1/transactions over --connections for --seconds, then GET
/api/v1/members/{code} over one. Prints both rates and their ratio, p50/p99 latency as
wrk sees it (client) and as gunicorn's access log has it (server: %(D)s, from reading
the request to sending the response), and SQL statements per request. Then the same
POSTs without a key (401, refused before any of the API's work) and, from the three
rates, the core time per request: what half the in-process rate leaves for the API's
own work once gunicorn, Django and DRF and the purchase are paid. Goals: HTTP at
least half the in-process rate, POST p99 under 50 ms, GET p50 under 5 ms server time at
1,000,000 members. --conn_max_age N: how long gunicorn keeps a database connection
(CONN_MAX_AGE; 0 connects per request); by default the settings' (60 s).
"""

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from purchases import WARM_UP, record
from synthetic import (
    ROOT,
    api_scratch,
    counting_queries,
    free_host,
    in_parallel,
    ready,
    start,
    wait_for_web,
    wsgi_post,
)

LUA = """
local members, run, n = %(members)d, "%(run)s", 0
local headers = {["Content-Type"] = "application/json"}
if "%(key)s" ~= "" then headers["Authorization"] = "Api-Key %(key)s" end
function init(args) math.randomseed(os.time()) end
function request()
  n = n + 1
  local code = string.format("S-%%08d", math.random(1, members))
  if "%(method)s" == "GET" then
    return wrk.format("GET", "/api/v1/members/" .. code, headers)
  end
  local at = os.date("!%%Y-%%m-%%dT%%H:%%M:%%S+00:00", os.time() - math.random(0, 2592000))
  return wrk.format("POST", "/api/v1/transactions", headers, string.format(
    '{"external_id":"%%s-%%d","member":"%%s","kind":"purchase","amount":"%%d.%%02d",'
    .. '"occurred_at":"%%s"}', run, n, code, math.random(5, 200), math.random(0, 99), at))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d\\n", summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout))
end
"""


def in_process_rate(workers: int, purchases: int, members: int) -> tuple[float, float]:
    """bench/purchases.py's run over `workers` processes: purchases per second and SQL
    statements per purchase."""
    jobs = [(w, purchases // workers, members, f"IN{time.time_ns()}") for w in range(workers)]
    results, seconds = in_parallel(record, jobs)
    done, statements = (sum(column) for column in zip(*results, strict=True))
    return done / seconds, statements / done


def wsgi_purchases(args) -> int:
    """POST /api/v1/transactions `count` times straight into Django's WSGI handler in
    this process (no HTTP server, no socket): what a request costs without gunicorn."""
    worker, count, members, secret = args
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.utils import timezone

    connection.close()  # a forked worker opens its own connection
    app, rng, run = get_wsgi_application(), random.Random(worker), f"W{time.time_ns()}"
    now = timezone.now()

    def post(i) -> bool:
        body = {
            "external_id": f"{run}-{worker}-{i}",
            "member": f"S-{rng.randint(1, members):08d}",
            "kind": "purchase",
            "amount": f"{rng.randint(500, 20000) / 100:.2f}",
            "occurred_at": (now - timedelta(minutes=rng.randint(0, 43200))).isoformat(),
        }
        return wsgi_post(app, "/api/v1/transactions", body, secret).startswith("201")

    for i in range(WARM_UP):
        post(f"warm-{i}")
    ready()
    return sum(post(i) for i in range(count))


def wsgi_rate(workers: int, purchases: int, members: int, secret: str) -> float:
    """wsgi_purchases over `workers` processes: 201s per second."""
    jobs = [(w, purchases // workers, members, secret) for w in range(workers)]
    created, seconds = in_parallel(wsgi_purchases, jobs)
    return sum(created) / seconds


def statements_per_request(secret: str) -> tuple[int, int]:
    """SQL statements of a POST and a GET through the WSGI app in this process, each
    counted the second time (after imports and the programme's per-process cache)."""
    from django.test import Client

    client, auth = Client(), {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}

    body = {"member": "S-00000001", "kind": "purchase", "amount": "10.00"}
    body |= {"occurred_at": "2025-01-01T10:00:00+00:00"}
    counts = []
    for method in ("POST", "GET"):
        for _ in range(2):
            with counting_queries() as statements:
                if method == "POST":
                    body["external_id"] = f"Q{time.time_ns()}"
                    response = client.post("/api/v1/transactions", body, "application/json", **auth)
                else:
                    response = client.get("/api/v1/members/S-00000001", **auth)
            assert response.status_code in (200, 201), response.content
        counts.append(len(statements))
    return counts[0], counts[1]


def wrk(method, url, seconds, connections, secret, members, log: Path, expect=None) -> dict:
    """One wrk run; its client-side figures and the server's from the new log lines.
    `rate` counts the answers of status `expect` (by default 201 for a POST, 200 for a
    GET)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    run = f"B{time.time_ns()}"
    script.write_text(LUA % dict(members=members, run=run, key=secret, method=method))
    offset = log.stat().st_size
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    output = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    script.unlink()
    result = next(line for line in output.splitlines() if line.startswith("RESULT")).split()
    duration, p50, p99, socket_errors = (int(x) for x in result[1:])
    with log.open() as lines:
        lines.seek(offset)
        rows = [line.split() for line in lines if line.startswith(method)]
    statuses = dict(Counter(row[1] for row in rows))
    per_process = sorted(Counter(row[4] for row in rows).values(), reverse=True)
    server = sorted(int(row[2]) / 1000 for row in rows)  # %(D)s is in microseconds
    return {
        "statuses": statuses,
        "rate": statuses.get(expect or ("201" if method == "POST" else "200"), 0)
        / (duration / 1e6),
        "client": (p50 / 1000, p99 / 1000),
        "server": (statistics.median(server), server[int(0.99 * (len(server) - 1))]),
        "socket_errors": socket_errors,
        "shares": [round(count / len(rows), 2) for count in per_process],
    }


def main():
    workers = int(os.environ.get("WEB_CONCURRENCY", 2))
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))  # logs; no static files needed
    # No rate limit in this process's WSGI run nor in gunicorn's: the throttle still counts.
    os.environ |= {"SECURE_SSL_REDIRECT": "false", "STATIC_ROOT": str(folder)}
    os.environ |= {"API_RATE": "1000000/s", "ALLOWED_HOSTS": "127.0.0.1,testserver"}
    args, bands = start(
        __doc__,
        "api",
        seconds=15,
        connections=4,
        workers=workers,
        threads=int(os.environ.get("WEB_THREADS", 4)),
        purchases=6000,
        conn_max_age=None,
    )

    from django.db import connection

    secret = api_scratch(args, bands)
    post_count, get_count = statements_per_request(secret)
    connection.close()

    kept = "of the settings" if args.conn_max_age is None else args.conn_max_age
    print(
        f"PostgreSQL, {args.members:,} members, {args.workers} processes, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
        f"gunicorn CONN_MAX_AGE {kept}, shared cache {os.environ.get('CACHE_URL') or 'none'}"
    )
    inproc, in_statements = in_process_rate(args.workers, args.purchases, args.members)
    print(
        f"in-process: {inproc:,.0f} purchases/s ({args.purchases:,} purchases, "
        f"{in_statements:.1f} SQL statements each)"
    )
    # The same requests as the HTTP run, without the server: the key, the member, the
    # summary and the first answer kept are the contract's work, not gunicorn's.
    through_django = wsgi_rate(args.workers, args.purchases, args.members, secret)
    connection.close()
    print(
        f"in-process through Django's WSGI handler, no server: {through_django:,.0f} "
        f"purchases/s ({through_django / inproc:.2f} of in-process)"
    )

    url = f"http://{free_host()}"
    log, errors = folder / "access.log", folder / "error.log"
    env = dict(os.environ)
    if args.conn_max_age is not None:
        env["CONN_MAX_AGE"] = str(args.conn_max_age)
    # As Procfile.prod's web process, the access log to a file with the time of each request.
    command = f"-m gunicorn loyalty_site.wsgi --bind {url[7:]} --workers {args.workers} "
    command += f"--threads {args.threads} "
    command += f"--timeout 120 --no-control-socket --access-logfile {log} --error-logfile {errors}"
    server = subprocess.Popen(
        [sys.executable, *command.split(), "--access-logformat", "%(m)s %(s)s %(D)s %(U)s %(p)s"],
        cwd=ROOT,
        env=env,
        stderr=errors.open("a"),  # Django's log (a line per 401) with gunicorn's
    )
    try:
        wait_for_web(url, errors)
        common = dict(secret=secret, members=args.members, log=log)
        wrk("GET", url, 2, args.workers, **common)  # warm-up: each worker's first requests
        post = wrk("POST", url, args.seconds, args.connections, **common)
        get = wrk("GET", url, max(5, args.seconds // 2), 1, **common)
        # The same POSTs without a key: refused (401) before any of the API's own work,
        # what gunicorn, Django and DRF cost a request on their own.
        bare = common | {"secret": ""}
        refused = wrk(
            "POST", url, max(5, args.seconds // 2), args.connections, **bare, expect="401"
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(folder)

    ratio = post["rate"] / inproc
    print(
        f"HTTP:       {post['rate']:,.0f} purchases/s over {args.connections} connections, "
        f"{args.seconds} s; statuses {post['statuses']}, socket errors {post['socket_errors']}, "
        f"shares of the web processes {post['shares']}, "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"ratio HTTP / in-process: {ratio:.2f}")
    for label, figures, count in (("POST", post, post_count), ("GET ", get, get_count)):
        (c50, c99), (s50, s99) = figures["client"], figures["server"]
        print(
            f"{label} p50 / p99: client {c50:5.1f} / {c99:5.1f} ms, server {s50:5.1f} / "
            f"{s99:5.1f} ms; {count} SQL statements ({figures['rate']:,.0f}/s)"
        )
    # CPU time per request over the machine's cores (all busy in both runs): what the
    # goal leaves for the API's own work once the server and the purchase are paid.
    cores = os.cpu_count()
    cost = {
        name: cores * 1000 / rate
        for name, rate in (("inproc", inproc), ("http", post["rate"]), ("bare", refused["rate"]))
    }
    print(
        f"core time per request: in-process purchase {cost['inproc']:.2f} ms, HTTP purchase "
        f"{cost['http']:.2f} ms, a request refused before the API's work (no key, 401: "
        f"gunicorn, Django, DRF) {cost['bare']:.2f} ms ({refused['rate']:,.0f}/s)"
    )
    left = cost["inproc"] - cost["bare"]  # twice the purchase, less the purchase and the bare
    print(
        f"at half the in-process rate, an HTTP purchase may take {2 * cost['inproc']:.2f} ms: "
        f"{left:.2f} ms for the API's own work (key, member, body, summary, first answer), "
        f"which takes {cost['http'] - cost['inproc'] - cost['bare']:.2f} ms now"
    )
    goals = {
        "HTTP at least half the in-process rate": ratio >= 0.5,
        f"POST p99 under 50 ms (client, {args.connections} connections)": post["client"][1] < 50,
        "GET p50 under 5 ms (server, one connection)": get["server"][0] < 5,
    }
    for goal, reached in goals.items():
        print(f"goal: {goal}: {'met' if reached else 'NOT met'}")


if __name__ == "__main__":
    main()
