"""The progress of a long job (an import's check or run) for the pages that follow it.

A job runs in one database transaction, which no other connection sees before it ends,
so its progress goes to a cache every process reads (the "progress" cache: a folder by
default, Redis with CACHE_URL), with a heartbeat written by a thread of the job's
process while it lives: a job whose heartbeat stops was killed with its process."""

import io
import threading
import time

from django.core.cache import caches

from core.unavailable import CACHE_ERRORS, cache_unreachable_logged

HEARTBEAT_SECONDS = 1
STALLED_SECONDS = 60  # no heartbeat for this long: the job's process is gone


def _cache():
    return caches["progress"]


def read(key: str) -> dict:
    """What the job last reported: its figures and `alive` (the time of its last
    heartbeat, seconds since the epoch), or {} if it never did."""
    try:
        return _cache().get(key) or {}
    except CACHE_ERRORS as unreachable:  # as if not started: the page asks again
        cache_unreachable_logged("an import's progress not read", unreachable)
        return {}


def stalled(key: str) -> bool:
    """Whether the job started and then gave no sign of life for STALLED_SECONDS (one
    that has not started yet waits in the queue for a worker)."""
    alive = read(key).get("alive")
    return alive is not None and time.time() - alive > STALLED_SECONDS


def ended(key: str, why: str) -> None:
    """The job ended without recording its outcome (the database away): `why`, for the
    page that follows it to record when it can."""
    try:
        _cache().set(key, {**read(key), "ended": why}, timeout=86_400)
    except CACHE_ERRORS as unreachable:  # the heartbeat's end tells it a minute later
        cache_unreachable_logged("an import's end not written", unreachable)


class Progress:
    """Reports a job's figures (report) and beats while the block runs."""

    def __init__(self, key: str):
        self.key = key
        self.figures = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self):
        self._write()
        self._beat = threading.Thread(target=self._beating, daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._beat.join()

    def report(self, **figures) -> None:
        """Update figures; written with the next heartbeat (reports are cheap to call
        on every chunk)."""
        with self._lock:
            self.figures.update(figures)

    def _beating(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._write()

    def _write(self):
        with self._lock:
            try:
                _cache().set(self.key, {**self.figures, "alive": time.time()}, timeout=86_400)
            except CACHE_ERRORS as unreachable:  # the next heartbeat writes it again
                cache_unreachable_logged("a heartbeat not written", unreachable)


class CountingReader(io.RawIOBase):
    """A binary file that tells `on_read` how many bytes were read so far."""

    def __init__(self, raw, on_read):
        self._raw, self._on_read, self.count = raw, on_read, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._raw.readinto(buffer)
        self.count += n or 0
        self._on_read(self.count)
        return n


def counted(raw, on_read):
    """`raw` (a binary file) buffered, counting what is read through it."""
    return io.BufferedReader(CountingReader(raw, on_read), buffer_size=1 << 20)
