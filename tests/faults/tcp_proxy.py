"""A TCP proxy on 127.0.0.1 that a test can cut, to take a database away from one connection only."""

import socket
import threading


class TcpProxy:
    """Forwards connections to `target`; `cut()` drops them all and refuses new ones until `restore()`."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._running = True

    def start(self) -> "TcpProxy":
        threading.Thread(target=self._accept_loop, daemon=True, name=f"tcp-proxy-{self.port}").start()
        return self

    def cut(self):
        """Close every forwarded connection mid-stream and refuse new ones, like a network failure."""
        with self._lock:
            self._open = False
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def restore(self):
        with self._lock:
            self._open = True

    def stop(self):
        self._running = False
        self.cut()
        _close(self._listener)

    def _accept_loop(self):
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                accepting = self._open
            if not accepting:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.extend([client, upstream])
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


def _pump(source: socket.socket, destination: socket.socket):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(destination)


def _close(sock: socket.socket):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
