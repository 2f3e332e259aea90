"""Real Celery worker processes, for the tests that go through Redis and the benchmarks."""

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from kombu import Exchange, Queue

from loyalty_site.celery import app


def redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


redis_only = pytest.mark.skipif(redis_url() is None, reason="needs CELERY_BROKER_URL=redis://...")


def wait_until(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@contextmanager
def running_workers(names, log_dir, pool="solo", **env):
    """Start one `celery worker` process per name on the test database and a private
    queue; yield (queue, {name: log file}) once all are ready; stop them on exit.
    `pool`: solo (the task runs in the worker's process) or prefork (in one child
    process, as in production). `env` adds settings, e.g. JOB_CHUNK_SIZE="500"."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    user = f"{db['USER']}:{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else db["USER"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_url(),
        "CELERY_QUEUE": queue,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # the files this test stored
        "IMPORTS_ROOT": str(settings.IMPORTS_ROOT),
        # the tests' webhook receivers listen on this machine (tests/conftest.py)
        "WEBHOOK_REFUSED_NETWORKS": ",".join(map(str, settings.WEBHOOK_REFUSED_NETWORKS)),
        **env,
    }
    logs = {name: log_dir / f"{name}.log" for name in names}
    workers = []
    for name, log in logs.items():
        with log.open("w") as out:
            command = [sys.executable, "-m", "celery", "-A", "loyalty_site", "worker"]
            command += [f"--hostname={name}@%h", f"--pool={pool}", "--concurrency=1"]
            command += ["--loglevel=INFO"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            workers.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        ready = wait_until(lambda: all(" ready." in log.read_text() for log in logs.values()))
        assert ready, "\n".join(log.read_text() for log in logs.values())
        app.conf.task_always_eager = False
        yield queue, logs
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        # Declared in this process too, so that deleting it drops its bindings as well.
        with app.connection_for_write() as broker:
            private = Queue(queue, Exchange(queue), routing_key=queue)(broker.default_channel)
            private.declare()
            private.delete()
