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
    answer's head has not come within `seconds`. Its body is never read (only the
    status counts): a receiver answering gigabytes fills no memory."""
    if threading.current_thread() is not threading.main_thread():
        return _head_only(session.post(url, timeout=seconds, stream=True, **kwargs))
    previous = signal.signal(signal.SIGALRM, _time_up)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return _head_only(session.post(url, timeout=seconds, stream=True, **kwargs))
        finally:  # an alarm due meanwhile is still caught below
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeUp:
        raise requests.Timeout(f"No answer within {seconds} s") from None
    finally:
        signal.signal(signal.SIGALRM, previous)


def _head_only(response: requests.Response) -> requests.Response:
    response.close()  # the body unread: the connection is dropped, not reused
    return response
