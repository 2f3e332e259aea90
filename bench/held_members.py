"""While a job holds some members, do the tills of the others still get answers?

    DATABASE_URL=postgres://... python bench/held_members.py [--members 20000] \
        [--held 50] [--seconds 20] [--connections 4]

Serves the web as Procfile.prod's web line does (its workers and threads; the lock
timeout loyalty_site/wsgi.py sets: WEB_CONCURRENCY, WEB_THREADS and
DATABASE_LOCK_TIMEOUT change them) in bench/api.py's scratch database. For --seconds,
wrk GETs the members no job holds over --connections, while a second wrk POSTs
purchases for the members a job holds over 2 connections (tills that send again at once
after a 503): first with no job, then while one transaction holds --held % of the
members, as an import of a file naming them does. Prints for both runs the other
members' answers per second and their p50 / p99 latency, and the held members' answers
by status.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from synthetic import ROOT, api_scratch, free_host, start, wait_for_web

LUA = """
local first, last, run, n = %(first)d, %(last)d, "%(run)s", 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Api-Key %(key)s"}
local threads = {}
-- answers by status, in the thread's globals (done() reads them through thread:get)
ok, created, unavailable, other = 0, 0, 0, 0
function setup(thread) table.insert(threads, thread) end
function request()
  n = n + 1
  local code = string.format("S-%%08d", math.random(first, last))
  if "%(method)s" == "GET" then
    return wrk.format("GET", "/api/v1/members/" .. code, headers)
  end
  return wrk.format("POST", "/api/v1/transactions", headers, string.format(
    '{"external_id":"%%s-%%d","member":"%%s","kind":"purchase","amount":"10.00",'
    .. '"occurred_at":"%%s"}', run, n, code, os.date("!%%Y-%%m-%%dT%%H:%%M:%%S+00:00")))
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 201 then created = created + 1
  elseif status == 503 then unavailable = unavailable + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d\\n", summary.duration,
    latency:percentile(50), latency:percentile(99)))
  for _, t in ipairs(threads) do
    io.write(string.format("STATUS 200 %%d\\nSTATUS 201 %%d\\nSTATUS 503 %%d\\nSTATUS other %%d\\n",
      t:get("ok"), t:get("created"), t:get("unavailable"), t:get("other")))
  end
end
"""


def wrk(method, url, seconds, connections, secret, first, last) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    values = dict(first=first, last=last, run=f"H{time.time_ns()}", key=secret, method=method)
    script.write_text(LUA % values)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s"]
    output = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True)
    script.unlink()
    lines = output.stdout.splitlines()
    duration, p50, p99 = (int(x) for x in next(x for x in lines if x[:6] == "RESULT").split()[1:])
    counted = (line.split()[1:] for line in lines if line.startswith("STATUS "))
    statuses = {status: int(count) for status, count in counted if count != "0"}
    answered = sum(statuses.values())
    return {
        "rate": answered / (duration / 1e6),
        "ms": (p50 / 1000, p99 / 1000),
        "statuses": dict(sorted(statuses.items())),
    }


def web_line() -> str:
    """Procfile.prod's web command, as honcho runs it."""
    line = next(x for x in (ROOT / "Procfile.prod").read_text().splitlines() if x[:4] == "web:")
    return line[4:].strip()


def hold(members: int, seconds: float, ready: threading.Event) -> None:
    """One transaction that locks members 1..`members` for `seconds`, as an import does."""
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        conn.execute("SELECT id FROM members_member WHERE id <= %s FOR UPDATE", [members])
        ready.set()
        time.sleep(seconds)


def main():
    os.environ |= {"SECURE_SSL_REDIRECT": "false", "API_RATE": "1000000/s"}
    os.environ |= {"ALLOWED_HOSTS": "127.0.0.1,testserver"}
    args, bands = start(__doc__, "api", members=20_000, held=50, seconds=20, connections=4)
    from django.db import connection

    secret = api_scratch(args, bands)
    connection.close()
    held = args.members * args.held // 100
    host = free_host()
    folder = Path(tempfile.mkdtemp(prefix="bench-held-"))
    bin_folder = str(Path(sys.executable).parent)  # gunicorn, as make serve's PATH has it
    env = dict(os.environ, HOST=host, STATIC_ROOT=str(folder))
    env["PATH"] = f"{bin_folder}:{env['PATH']}"
    log = (folder / "web.log").open("w")
    server = subprocess.Popen(["bash", "-c", web_line()], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://{host}"
    try:
        wait_for_web(url, folder / "web.log")
        # The line's ${VARIABLE:-default} as the shell gives them to gunicorn.
        line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), web_line())
        given = re.findall(r"--(workers|threads) (\S+)", line)
        settings = ", ".join(f"{name} {value}" for name, value in given)
        print(
            f"{args.members:,} members, {held:,} held; web: {settings}; DATABASE_LOCK_TIMEOUT "
            f"{os.environ.get('DATABASE_LOCK_TIMEOUT', 'as wsgi.py sets it')}"
        )
        wrk("GET", url, 2, args.connections, secret, held + 1, args.members)  # warm-up
        for label, holding in (("no job", False), ("a job holds them", True)):
            ready = threading.Event()
            if holding:
                job = threading.Thread(target=hold, args=(held, args.seconds + 5, ready))
                job.start()
                ready.wait()
            results = {}

            def run(name, method, connections, first, last, results=results):
                results[name] = wrk(method, url, args.seconds, connections, secret, first, last)

            runs = [
                threading.Thread(
                    target=run, args=("others", "GET", args.connections, held + 1, args.members)
                ),
                threading.Thread(target=run, args=("held", "POST", 2, 1, held)),
            ]
            for thread in runs:
                thread.start()
            for thread in runs:
                thread.join()
            if holding:
                job.join()
            others, on_held = results["others"], results["held"]
            print(
                f"{label:<17} other members' GETs: {others['rate']:7.1f}/s, p50 / p99 "
                f"{others['ms'][0]:7.1f} / {others['ms'][1]:7.1f} ms {others['statuses']}; "
                f"held members' purchases: {on_held['statuses']}, p50 {on_held['ms'][0]:.0f} ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
