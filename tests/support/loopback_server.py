"""A small HTTP server on 127.0.0.1 for tests that need a real peer (the
factor service, the callback receiver): started on a free port, stopped by
the test that started it, handler threads that never block the stop."""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """Handler threads are daemons (a held request never blocks stop()), and a
    client that hung up early (a timeout under test) is not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Subclasses answer `method` requests in `_handle(req)`; `_release` is
    set on stop so requests held on purpose can finish."""

    method = "GET"

    def __init__(self) -> None:
        self._release = threading.Event()
        self._server: QuietServer | None = None

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        setattr(Handler, f"do_{self.method}", lambda req: owner._handle(req))
        self._server = QuietServer(("127.0.0.1", 0), Handler)
        # A short poll interval: stop() returns as soon as serve_forever notices.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self.url

    def stop(self) -> None:
        self._release.set()  # let held requests finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, f"{type(self).__name__} is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError
