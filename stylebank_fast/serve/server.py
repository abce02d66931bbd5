"""Running the app with uvicorn on a socket bound first, so that the address (port 0: a free
one) is known before the server starts: for the command line, tests and benchmarks."""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.types import ASGIApp

__all__ = ["bind", "Server"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 takes a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class Server:
    """`app` served on `sock` by uvicorn: `run()` in this thread (until Ctrl-C), or
    `start()` in a background thread and `stop()`."""

    def __init__(self, app: ASGIApp, sock: socket.socket, log_level: str = "warning") -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.run, name="stylebank-serve", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
