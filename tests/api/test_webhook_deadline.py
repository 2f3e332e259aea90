"""A webhook post has WEBHOOK_TIMEOUT_SECONDS in all, whichever thread sends it: Celery's
prefork pool runs a task on its process's main thread, but its threads pool (and a
sender called from any other thread) does not, and there no alarm signal can cut a
receiver off. A receiver that drips its answer a byte at a time must not hold a worker
(nor outlast the endpoint's hold, after which another sender would post the same
member's events out of order)."""

import shutil
import socket
import ssl
import subprocess
import time as clock
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from api.bounded_post import WatchedAdapter, post_within
from tests.api.receiver import serving, start_receiver
from tests.conftest import run_together

DRIP_SECONDS = 0.1  # between the bytes of the answer's head: about 4 s in all


def serve_dripping(
    tls=None, *, at_once=b"", dripped=b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
):
    """A receiver that answers 200, its status line and headers a byte at a time (or
    `at_once`, then `dripped` a byte at a time)."""

    class Dripping(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"] or 0))
            try:
                self.wfile.write(at_once)
                for byte in dripped:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    clock.sleep(DRIP_SECONDS)
            except OSError:  # the sender hung up: as it should
                pass

        def log_message(self, *args):
            pass

    server = serving(Dripping, tls=tls)
    scheme = "https" if tls else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}/hooks"


@pytest.fixture
def dripping():
    server, url = serve_dripping()
    yield url
    server.shutdown()


@pytest.fixture
def dripping_headers():
    """A receiver whose status line comes at once, then header after header, never the
    end of the head."""
    server, url = serve_dripping(at_once=b"HTTP/1.1 200 OK\r\n", dripped=b"x-a: b\r\n" * 10)
    yield url
    server.shutdown()


@pytest.fixture
def dripping_over_tls(tmp_path):
    """The same receiver behind TLS (a certificate of its own, made by openssl)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server, url = serve_dripping(tls)
    yield url
    server.shutdown()


def timed_post(url, seconds):
    """post_within(...) -> (its answer or the exception it raised, the seconds it took)."""
    started = clock.monotonic()
    try:
        answer = post_within(requests.Session(), seconds, url, data=b"{}", verify=False)
    except requests.RequestException as exc:
        answer = exc
    return answer, clock.monotonic() - started


@pytest.mark.parametrize("thread", ["main", "another"])
def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout_in_any_thread(dripping, thread):
    # when: a post with half a second in all, on the main thread or on a worker's thread
    if thread == "main":
        answer, took = timed_post(dripping, 0.5)
    else:
        ((answer, took),) = run_together(1, lambda i: timed_post(dripping, 0.5))

    # then: no answer in time, after about the timeout
    assert isinstance(answer, requests.Timeout), answer
    assert took < 1.0, f"held {took:.1f} s"


def test_a_200_whose_head_is_cut_off_at_the_timeout_is_no_answer(dripping_headers):
    # when: its status line came in time, the rest of its head did not
    answer, took = timed_post(dripping_headers, 0.5)

    # then: not delivered, as any answer not complete in time (retried)
    assert isinstance(answer, requests.Timeout), answer
    assert took < 1.0, f"held {took:.1f} s"


@pytest.mark.parametrize("thread", ["main", "another"])
def test_a_receiver_that_answers_in_time_is_heard_in_any_thread(thread):
    # given: a receiver that answers at once
    receiver, server = start_receiver()
    try:
        # when
        if thread == "main":
            answer, _ = timed_post(receiver.url, 2)
        else:
            ((answer, _),) = run_together(1, lambda i: timed_post(receiver.url, 2))
    finally:
        server.shutdown()

    # then
    assert answer.status_code == 200 and len(receiver.received) == 1


def test_many_posts_at_once_each_keep_their_own_time(dripping):
    # given: eight threads, as a threads pool of eight, posting to the dripping receiver
    # when
    results = run_together(8, lambda i: timed_post(dripping, 0.3 + 0.1 * (i % 2)))

    # then: each was cut off at its own timeout
    for i, (answer, took) in enumerate(results):
        assert isinstance(answer, requests.Timeout), (i, answer)
        assert took < 0.3 + 0.1 * (i % 2) + 0.5, (i, took)


class SlowToConnect(WatchedAdapter):
    """Connects only after `seconds`, as a slow name look-up or a loaded machine would."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def send(self, *args, **kwargs):
        clock.sleep(self.seconds)
        return super().send(*args, **kwargs)


def test_a_post_whose_connection_comes_after_its_time_is_cut_off_at_once(dripping):
    # given: a sender whose connection opens 0.5 s into a post of 0.3 s in all
    session = requests.Session()
    session.mount("http://", SlowToConnect(0.5))
    started = clock.monotonic()

    # when
    with pytest.raises(requests.Timeout):
        post_within(session, 0.3, dripping, data=b"{}")

    # then: cut off as soon as it connected, not held while the receiver drips (4 s)
    took = clock.monotonic() - started
    assert took < 1.0, f"held {took:.1f} s"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("thread", ["main", "another"])
def test_an_https_receiver_that_drips_its_answer_is_cut_off_too(dripping_over_tls, thread):
    # when: TLS has taken the post's socket over (another socket object, the same one)
    if thread == "main":
        answer, took = timed_post(dripping_over_tls, 0.5)
    else:
        ((answer, took),) = run_together(1, lambda i: timed_post(dripping_over_tls, 0.5))

    # then
    assert isinstance(answer, requests.Timeout), answer
    assert took < 1.0, f"held {took:.1f} s"


@pytest.fixture
def dropping_port():
    """A port on this machine whose connections hang, as behind a firewall that drops
    them: a listener whose queue is full, and takes no more."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(4):
        pending = socket.socket()
        pending.setblocking(False)
        pending.connect_ex(("127.0.0.1", port))
        queued.append(pending)
    clock.sleep(0.2)
    yield port
    for sock in [listener, *queued]:
        sock.close()


def test_a_name_with_many_addresses_that_drop_connections_has_the_post_s_time_in_all(
    dripping, dropping_port, monkeypatch
):
    """Found by a review: each address of a name was given the whole time (urllib3's way),
    so a receiver's name with five dead addresses held the post five times as long, past
    the endpoint's hold."""
    # given: a name whose first five addresses drop connections
    looked_up = socket.getaddrinfo

    def addresses(host, port, *args, **kwargs):
        if host != "receiver.test":
            return looked_up(host, port, *args, **kwargs)
        dead = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dropping_port))
        return [dead] * 5 + looked_up("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", addresses)
    url = dripping.replace("127.0.0.1", "receiver.test")

    # when: posted with a second in all
    started = clock.monotonic()
    with pytest.raises(requests.Timeout):
        post_within(requests.Session(), 1, url, data=b"{}")

    # then: it ends after that second, not five
    assert clock.monotonic() - started < 2
