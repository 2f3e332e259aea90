"""A POST given a number of seconds in all. requests' own timeout bounds the connection
and each read, not the whole answer: a receiver that sends its answer a byte at a time
could hold a webhook sender far longer than WEBHOOK_TIMEOUT_SECONDS, and outlast the
endpoint's hold. The post runs on a thread of a small pool; when its time is up the
sender goes on, and the thread ends at requests' next read timeout, its answer unread."""

import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as TimeUp

import requests


def _pool() -> ThreadPoolExecutor:
    # A post given up holds its thread until requests' next read timeout: a few at most.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-post")


_posts = _pool()


def _fresh_pool() -> None:
    """A forked process (a Celery worker's child) starts its own pool: its parent's
    threads did not come with it."""
    global _posts
    _posts = _pool()


os.register_at_fork(after_in_child=_fresh_pool)


def post_within(session: requests.Session, seconds: float, url: str, **kwargs):
    """session.post(url, timeout=seconds, **kwargs), raising requests.Timeout when the
    whole answer has not come within `seconds`."""
    future = _posts.submit(session.post, url, timeout=seconds, **kwargs)
    try:
        return future.result(timeout=seconds)
    except TimeUp:
        future.cancel()  # not started yet (every thread busy with slow receivers)
        raise requests.Timeout(f"No answer within {seconds} s") from None
