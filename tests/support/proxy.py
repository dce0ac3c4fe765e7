"""A TCP proxy a test can cut and restore: a database that goes away and comes back."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.processes import free_port


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut`` drops every connection and refuses
    new ones until ``restore``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            everything, self._sockets = self._sockets, []
            if self._listener is not None:
                everything.append(self._listener)
                self._listener = None
        for sock in everything:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                # A connection accepted while ``cut`` ran must not outlive the cut.
                cut = self._listener is not listener
                if not cut:
                    self._sockets += [client, upstream]
            if cut:
                client.close()
                upstream.close()
                return
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
