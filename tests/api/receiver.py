"""A real HTTP receiver of webhooks on 127.0.0.1, started by a test: it answers with the
codes it is told, or not at all, and keeps what it was sent."""

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


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    return receiver, server
