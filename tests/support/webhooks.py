"""A webhook receiver for the notification tests: an HTTP server on a fresh loopback address
(127.<random>.<random>.1) that records each JSON body posted and answers the statuses it is
told to (then 200)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.producer_services import loopback_address


class Receiver:
    def __init__(self):
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []  # answered first, in order; then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.paths.append(self.path)
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((loopback_address(), 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook/s3cr3t-token") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_url() -> str:
    """A loopback URL where nothing listens (the port was bound, then let go)."""
    with socket.socket() as sock:
        sock.bind((loopback_address(), 0))
        host, port = sock.getsockname()
    return f"http://{host}:{port}/hook/s3cr3t-token"
