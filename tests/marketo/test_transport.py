"""MarketoClient against real sockets on 127.0.0.1: refused, dropped and logged connections."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.marketo.client import MarketoClient
from integrations.marketo.exceptions import (
    MarketoOutcomeUnknownError,
    MarketoTransientError,
    MarketoUnreachableError,
)

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN


class _MarketoHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/identity/oauth/token"):
            self._send({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3599})
        else:
            self._send({"requestId": "r#1", "success": True, "result": [{"total": 3}]})

    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MarketoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dropping_server():
    """A server that reads each request and closes the connection without a response."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def build_client(base_url, usage, clock):
    return MarketoClient(
        base_url, CLIENT_ID, CLIENT_SECRET, usage_recorder=usage, max_attempts=2,
        connect_timeout=2, read_timeout=2, sleep=clock.sleep, random=lambda: 0.0,
    )


def test_refused_connection_raises_unreachable(usage, clock):
    base_url = f"http://127.0.0.1:{closed_port()}"
    client = build_client(base_url, usage, clock)

    with pytest.raises(MarketoUnreachableError) as raised:
        client.get_daily_usage()

    assert base_url in str(raised.value)
    assert "client_secret" not in str(raised.value)
    assert CLIENT_SECRET not in str(raised.value)
    assert raised.value.__cause__ is None


def test_refused_connection_retried_when_not_idempotent(usage, clock, http_server):
    # The identity call succeeds; then the REST port is closed, so nothing was sent.
    client = build_client(http_server, usage, clock)
    client.get_daily_usage()
    client.base_url = f"http://127.0.0.1:{closed_port()}"

    with pytest.raises(MarketoUnreachableError):
        client.add_custom_activities([{"leadId": 1}])

    assert len(clock.sleeps) == 1
    assert usage.calls == [("/rest/v1/stats/usage.json", None, True)]


def test_dropped_connection_is_unknown_outcome(usage, clock, http_server, dropping_server):
    client = build_client(http_server, usage, clock)
    client.get_daily_usage()
    client.base_url = dropping_server

    with pytest.raises(MarketoOutcomeUnknownError):
        client.add_custom_activities([{"leadId": 1}])

    assert clock.sleeps == []
    assert usage.calls[-1] == ("/rest/v1/activities/external.json", "connection", True)


def test_dropped_connection_retried_when_idempotent(usage, clock, http_server, dropping_server):
    client = build_client(http_server, usage, clock)
    client.get_daily_usage()
    client.base_url = dropping_server

    with pytest.raises(MarketoTransientError) as raised:
        client.get_daily_usage()

    assert not isinstance(raised.value, MarketoOutcomeUnknownError)
    assert len(clock.sleeps) == 1


def test_urllib3_debug_log_of_token_request_redacted(usage, clock, http_server, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    client = build_client(http_server, usage, clock)

    assert client.get_daily_usage() == [{"total": 3}]

    urllib3_lines = [record.getMessage() for record in caplog.records if record.name.startswith("urllib3")]
    assert any("/identity/oauth/token" in line for line in urllib3_lines)
    for line in urllib3_lines:
        assert CLIENT_SECRET not in line
        assert CLIENT_ID not in line
        assert "grant_type" not in line
