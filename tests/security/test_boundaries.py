"""Boundaries: the server's network (base URL allowlist, no redirects), CSRF, and other workspaces' data."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from agents.api import receive_events
from agents.models import Conversation, InboundEvent, OrganizationMembership
from integrations.marketo.client import MarketoClient, clear_token_cache
from integrations.marketo.connect import ConnectionFlowError, connect_marketo
from integrations.marketo.exceptions import MarketoRequestError
from integrations.models import MarketoConnection
from tests.factories import conversation_event, make_agent, make_organization

pytestmark = pytest.mark.django_db


class _Recorder(BaseHTTPRequestHandler):
    """Reply to every request with what the server's `reply` returns, and record its path."""

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        self.server.paths.append(self.path)
        status, headers, body = self.server.reply(self.path)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_server():
    servers = []

    def start(reply):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.paths = []
        server.reply = reply
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    clear_token_cache()


def _token_reply(path):
    body = json.dumps({"access_token": "tok", "token_type": "bearer", "expires_in": 3600}).encode()
    return 200, {"Content-Type": "application/json"}, body


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:9", "http://169.254.169.254", "http://localhost:8000", "https://evil.example.com"],
)
def test_unlisted_base_url_refused(base_url, settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["http://127.0.0.1:8999"]
    organization, _ = make_organization()

    with pytest.raises(ConnectionFlowError, match="MARKETO_ALLOWED_BASE_URLS"):
        connect_marketo(organization, munchkin_id="417-QWE-902", client_id="id", client_secret="s", base_url=base_url)

    assert not MarketoConnection.objects.filter(base_url_override=base_url).exists()


def test_listed_base_url_path_refused(settings, http_server):
    target = http_server(_token_reply)
    settings.MARKETO_ALLOWED_BASE_URLS = [target.url]
    organization, _ = make_organization()

    with pytest.raises(ConnectionFlowError, match="without the path"):
        connect_marketo(
            organization, munchkin_id="417-QWE-902", client_id="id", client_secret="s", base_url=f"{target.url}/internal"
        )

    assert target.paths == []


def test_identity_redirect_not_followed(http_server):
    elsewhere = http_server(_token_reply)
    redirecting = http_server(lambda path: (302, {"Location": f"{elsewhere.url}/identity/oauth/token"}, b""))
    client = MarketoClient(redirecting.url, "id", "secret", max_attempts=1)

    with pytest.raises(MarketoRequestError, match="HTTP 302"):
        client.get_daily_usage()

    assert elsewhere.paths == []
    assert len(redirecting.paths) == 1


def test_rest_redirect_not_followed(http_server):
    elsewhere = http_server(_token_reply)

    def reply(path):
        if path.startswith("/identity/"):
            return _token_reply(path)
        return 307, {"Location": f"{elsewhere.url}{path}"}, b""

    redirecting = http_server(reply)
    client = MarketoClient(redirecting.url, "id", "secret", max_attempts=1)

    with pytest.raises(MarketoRequestError, match="HTTP 307") as raised:
        client.sync_leads([{"email": "ada@example.org"}])

    assert elsewhere.paths == []
    assert "secret" not in str(raised.value)


def _views(resolver=None):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def test_only_webhook_csrf_exempt():
    exempt = {view for view in _views() if getattr(view, "csrf_exempt", False)}

    assert exempt == {receive_events}


def test_webhook_needs_token_not_csrf():
    organization, token = make_organization()
    client = Client(enforce_csrf_checks=True)
    body = json.dumps(conversation_event())

    without_token = client.post("/api/v1/events", data=body, content_type="application/json")
    with_token = client.post(
        "/api/v1/events", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    form_post = client.post("/login/", {"username": "x", "password": "y"})

    assert without_token.status_code == 401
    assert with_token.status_code == 200
    assert form_post.status_code == 403


def test_token_writes_only_its_workspace(client):
    first, first_token = make_organization("first", "First")
    second, second_token = make_organization("second", "Second")

    for token in (first_token, second_token):
        response = client.post(
            "/api/v1/events", data=json.dumps(conversation_event()), content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.json()["accepted"] == 1

    # The same ids in two workspaces are two events, never a duplicate of the other's.
    assert InboundEvent.objects.filter(organization=first).count() == 1
    assert InboundEvent.objects.filter(organization=second).count() == 1
    assert Conversation.objects.filter(organization=second, agent__organization=second).count() == 1


def test_admin_sees_only_own_agents(client):
    first, _ = make_organization("first", "First")
    second, _ = make_organization("second", "Second")
    make_agent(first, "agt_first")
    other = make_agent(second, "agt_second")
    admin = get_user_model().objects.create_user("admin@first.example", password="pw-for-tests-only")
    OrganizationMembership.objects.create(user=admin, organization=first)
    client.force_login(admin)

    listing = client.get("/settings/agents/")
    other_page = client.get(f"/settings/agents/{other.pk}/marketo/")

    assert "agt_first" in listing.content.decode()
    assert "agt_second" not in listing.content.decode()
    assert other_page.status_code == 404
