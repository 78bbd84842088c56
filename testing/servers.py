"""Local HTTP and TCP servers on free loopback ports, for fakes of outside services."""

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    """A client that hangs up before its answer (one a test gave up on at its deadline) is
    the case under test, not an error: only other failures are printed."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(handler_cls: type) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start a threaded HTTP server for `handler_cls` on a free loopback port."""
    httpd = _Server(("127.0.0.1", 0), handler_cls)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd, thread


@contextmanager
def handler_server(handler_cls: type, **attrs) -> Iterator[tuple[object, str]]:
    """Serve a BaseHTTPRequestHandler class on a free loopback port: (server, base URL).

    `attrs` become attributes of the server, which handlers read as `self.server.<name>`.
    """
    httpd, thread = serve(handler_cls)
    for name, value in attrs.items():
        setattr(httpd, name, value)
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class SilentServer:
    """Listens on 127.0.0.1; the kernel completes each handshake, nobody ever reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.sock.close()
