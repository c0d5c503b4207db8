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


@pytest.fixture(scope="session", autouse=True)
def _close_stray_test_database_sessions(django_db_setup, django_db_blocker):
    """Close test-database sessions that other threads left open, before the test database is dropped.

    Request threads of the session-wide live server and worker threads of
    some tests open their own connections, and Django closes a connection
    only from the thread that opened it. PostgreSQL refuses to drop a
    database that still has sessions, which left the test database behind
    with a warning.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
