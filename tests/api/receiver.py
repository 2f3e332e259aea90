"""A real HTTP receiver of webhooks on 127.0.0.1, started by a test: it answers with the
codes it is told, or not at all, and keeps what it was sent."""

import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list = field(default_factory=list)  # status codes to give first, then 200
    hang_seconds: float = 0  # wait this long before answering (a receiver that hangs)
    waits: list = field(default_factory=list)  # seconds to wait first, then hang_seconds
    location: str = ""  # with a 3xx answer: where it points
    retry_after: str = ""  # a Retry-After header, with every answer but a 2xx
    reason: str = ""  # the status line's reason phrase, if not the usual one
    received: list = field(default_factory=list)

    def answer(self) -> int:
        return self.answers.pop(0) if self.answers else 200


def start_receiver(tls_in=None) -> tuple[Receiver, ThreadingHTTPServer]:
    """`tls_in`: a folder; the receiver then answers over https, with a self-signed
    certificate for 127.0.0.1 written there (certificate.pem), as a brand's own CA
    would sign one."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection, as real receivers do

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            receiver.received.append(Received(dict(self.headers.items()), body))
            wait = receiver.waits.pop(0) if receiver.waits else receiver.hang_seconds
            if wait:
                time.sleep(wait)
            code = receiver.answer()
            self.send_response(code, receiver.reason or None)
            if receiver.location:
                self.send_header("location", receiver.location)
            if receiver.retry_after and code >= 300:
                self.send_header("retry-after", receiver.retry_after)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = serving(Handler, tls=_tls(tls_in) if tls_in else None)
    scheme = "https" if tls_in else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hooks"
    return receiver, server


def serving(handler, *, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1 answering with `handler`, each request in a
    thread. It looks for shutdown() every 10 ms: Python's half second was most of a
    webhook test's time."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    polling = {"poll_interval": 0.01}
    threading.Thread(target=server.serve_forever, kwargs=polling, daemon=True).start()
    return server


def _tls(folder) -> ssl.SSLContext:
    key, certificate = folder / "key.pem", folder / "certificate.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", key, "-out", certificate, "-subj", "/CN=crm.internal"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context
