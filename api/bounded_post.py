"""A POST given a number of seconds in all, whichever thread sends it. requests' own
timeout bounds the connection and each read, not the whole answer: a receiver that
sends its answer a byte at a time could hold a webhook sender far longer than
WEBHOOK_TIMEOUT_SECONDS, and outlast the endpoint's hold (another sender would then post
the same member's events). A watchdog cuts the post off when its time is up: it shuts
the post's socket down, which ends any read waiting on it at once. It works on any
thread: Celery's prefork pool runs a task on its process's main thread, its threads
pool (`-P threads`) does not, and no alarm signal can reach another thread."""

import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from api.refused_networks import check_connected

# The watchdog of the post on this thread, told of each socket the post opens.
_posting = threading.local()


def post_within(session: requests.Session, seconds: float, url: str, **kwargs):
    """session.post(url, timeout=seconds, **kwargs), raising requests.Timeout when the
    answer's head has not come within `seconds`. Its body is never read (only the
    status counts): a receiver answering gigabytes fills no memory. The session is
    given connections the watchdog can cut (`watched`)."""
    watched(session)
    watchdog = _Watchdog(deadline=time.monotonic() + seconds)
    timer = threading.Timer(seconds, watchdog.cut)
    timer.daemon = True
    _posting.watchdog = watchdog
    timer.start()
    try:
        response = session.post(url, timeout=seconds, stream=True, **kwargs)
    except requests.RequestException:
        if watchdog.fired:  # its socket cut: whatever the read made of it
            raise requests.Timeout(f"No answer within {seconds} s") from None
        raise
    finally:
        timer.cancel()
        _posting.watchdog = None
        watchdog.done()
    if watchdog.fired:  # cut mid-head: http.client reads the cut as the head's end
        response.close()
        raise requests.Timeout(f"No answer within {seconds} s")
    return _head_only(response)


class _Watchdog:
    """The sockets of one post, each by a descriptor of its own (socket.dup): shutting
    one down ends the reads of the post's socket, even once TLS has taken it over (its
    socket object is then another), and never touches a descriptor the system has given
    to another connection since."""

    def __init__(self, *, deadline: float):
        self.deadline = deadline  # time.monotonic()'s, when the post's time is up
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock.dup())
            if self.fired:  # the time was up before the connection came: cut it at once
                _shut(self.sockets[-1])

    def cut(self) -> None:
        with self.lock:
            self.fired = True
            for sock in self.sockets:
                _shut(sock)

    def done(self) -> None:
        with self.lock:
            for sock in self.sockets:
                sock.close()
            self.sockets = []


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed by the other end meanwhile
        pass


def _head_only(response: requests.Response) -> requests.Response:
    response.close()  # the body unread: the connection is dropped, not reused
    return response


# Connections that tell the post on their thread their socket, as soon as it exists
# (before TLS's handshake, which the watchdog cuts too).


class _Watched:
    def _new_conn(self):
        watchdog = getattr(_posting, "watchdog", None)
        sock = super()._new_conn() if watchdog is None else self._connect_within(watchdog)
        check_connected(self, sock)  # never into a refused network, whatever the name
        if watchdog is not None:
            watchdog.watch(sock)
        return sock

    def _connect_within(self, watchdog: "_Watchdog") -> socket.socket:
        """Each address of the name in turn, as urllib3 tries them, but within what is
        left of the post's time: urllib3 gives each address the whole timeout, so a name
        with five addresses that drop connections took five timeouts (found by a review:
        the round outlasted the endpoint's hold). The name's look-up itself is the
        system's, unbounded."""
        name, timeout = self._dns_host, self.timeout
        addresses = socket.getaddrinfo(
            name.strip("[]"), self.port, allowed_gai_family(), socket.SOCK_STREAM
        )
        failed = None
        try:
            for *_, address in addresses:
                left = watchdog.deadline - time.monotonic()
                if left <= 0:
                    break
                self._dns_host = address[0]
                self.timeout = min(timeout, left) if isinstance(timeout, float | int) else left
                try:
                    return super()._new_conn()
                except (ConnectTimeoutError, NewConnectionError) as error:
                    failed = error
        finally:
            self._dns_host, self.timeout = name, timeout
        raise failed or ConnectTimeoutError(self, f"No connection to {self.host} in time")


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, its connections watched (directly or through an HTTP proxy;
    a SOCKS proxy's connections are its own, and only requests' timeout applies)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def watched(session: requests.Session) -> requests.Session:
    """The session, posting through WatchedAdapter (mounted once)."""
    if not isinstance(session.get_adapter("http://"), WatchedAdapter):
        session.mount("http://", WatchedAdapter())
        session.mount("https://", WatchedAdapter())
    return session
