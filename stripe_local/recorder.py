"""``WebhookRecorder``: a tiny HTTP endpoint that records what the local Stripe POSTs to it.

For tests of the server itself and of code that only needs the raw deliveries. It answers
200, or the statuses queued with ``fail_next`` (to exercise retries).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def signature(self) -> str:
        return self.headers.get("stripe-signature", "")


class WebhookRecorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._statuses: list[int] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    status = recorder._statuses.pop(0) if recorder._statuses else 200
                    recorder.received.append(
                        Received(body, {k.lower(): v for k, v in self.headers.items()}, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stripe/webhook/"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> WebhookRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]
