"""A POST given a number of seconds in all. requests' own timeout bounds the connection
and each read, not the whole answer: a receiver that sends its answer a byte at a time
could hold a webhook sender far longer than WEBHOOK_TIMEOUT_SECONDS, and outlast the
endpoint's hold. An alarm signal cuts the post off when its time is up (urllib3 then
closes that connection): Celery's prefork workers run each task on their main thread.
On another thread, where no signal can be delivered, only requests' own timeout
applies."""

import signal
import threading

import requests


class _TimeUp(Exception):
    """Raised by the alarm; none of requests' or urllib3's handlers catches it."""


def _time_up(signum, frame):
    raise _TimeUp


def post_within(session: requests.Session, seconds: float, url: str, **kwargs):
    """session.post(url, timeout=seconds, **kwargs), raising requests.Timeout when the
    whole answer has not come within `seconds`."""
    if threading.current_thread() is not threading.main_thread():
        return session.post(url, timeout=seconds, **kwargs)
    previous = signal.signal(signal.SIGALRM, _time_up)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return session.post(url, timeout=seconds, **kwargs)
        finally:  # an alarm due meanwhile is still caught below
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeUp:
        raise requests.Timeout(f"No answer within {seconds} s") from None
    finally:
        signal.signal(signal.SIGALRM, previous)
