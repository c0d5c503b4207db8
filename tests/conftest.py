"""Fixtures shared by the whole suite."""

import socket

import pytest


_real_connect = socket.socket.connect


def _loopback_only_connect(sock, address, *args, **kwargs):
    # Tests talk to the sandbox, PostgreSQL, Redis and test servers on this
    # machine only. A wrong base URL or a forgotten stub fails here instead
    # of reaching another host.
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConnectionRefusedError(f"Tests may only connect to loopback, not {host!r}.")
    return _real_connect(sock, address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _block_non_loopback_connections(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only_connect)
