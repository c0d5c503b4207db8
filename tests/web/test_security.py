"""Secrets never rendered, CSRF enforced, user data escaped on admin and settings pages."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import Conversation
from integrations.models import MarketoConnection
from tests.web.helpers import CLIENT_SECRET, PASSWORD, connect, make_agent, make_org, make_org_admin, make_staff

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def stored_connection(organization, secret=CLIENT_SECRET):
    connection = MarketoConnection(
        organization=organization, munchkin_id="417-QWE-902", client_id="docket-demo-client",
        status=MarketoConnection.Status.CONNECTED,
    )
    connection.set_client_secret(secret)
    connection.save()
    return connection


@pytest.fixture
def staff_client(client):
    make_staff()
    client.login(username="cs@docket.example", password=PASSWORD)
    return client


def test_secret_absent_from_admin_pages(staff_client):
    organization = make_org("acme")
    connection = stored_connection(organization)

    pages = [
        reverse("admin:integrations_marketoconnection_change", args=[connection.pk]),
        reverse("admin:integrations_marketoconnection_changelist"),
        reverse("admin:agents_organization_change", args=[organization.pk]),
        reverse("admin:agents_organization_changelist"),
    ]
    for url in pages:
        html = staff_client.get(url).content.decode()
        assert CLIENT_SECRET not in html, url
        assert connection.client_secret_encrypted not in html, url
    changelist = staff_client.get(pages[1]).content.decode()
    assert ">set<" in changelist


def test_secret_absent_from_settings_page(client):
    organization = make_org("acme")
    stored_connection(organization)
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)

    html = client.get(reverse("settings-marketo")).content.decode()

    assert CLIENT_SECRET not in html
    assert 'name="client_secret"' in html
    assert 'type="password"' in html


def test_secret_not_echoed_after_failed_connect(client, marketo_sandbox):
    organization = make_org("acme")
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)

    response = client.post(
        reverse("settings-marketo"),
        {"munchkin_id": "not-an-id", "client_id": "x", "client_secret": "typed-secret-value"},
    )

    assert response.status_code == 200
    assert "typed-secret-value" not in response.content.decode()


def test_admin_blank_secret_keeps_stored(staff_client):
    organization = make_org("acme")
    connection = stored_connection(organization)
    url = reverse("admin:integrations_marketoconnection_change", args=[connection.pk])
    data = {
        "munchkin_id": "417-QWE-902", "client_id": "docket-demo-client", "client_secret": "",
        "base_url_override": "", "daily_quota": "50000", "docket_quota_percent": "50",
        "rate_limit_calls": "50", "rate_limit_window_seconds": "20", "max_concurrent_calls": "5",
    }

    response = staff_client.post(url, data)

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.get_client_secret() == CLIENT_SECRET
    entry = organization.audit_log.get(action="admin.change_connection")
    assert entry.changes["client_secret_changed"] is False
    assert CLIENT_SECRET not in str(entry.changes)


def test_admin_new_secret_audited_without_value(staff_client):
    organization = make_org("acme")
    connection = stored_connection(organization)
    url = reverse("admin:integrations_marketoconnection_change", args=[connection.pk])
    data = {
        "munchkin_id": "417-QWE-902", "client_id": "docket-demo-client", "client_secret": "brand-new-secret",
        "base_url_override": "", "daily_quota": "50000", "docket_quota_percent": "50",
        "rate_limit_calls": "50", "rate_limit_window_seconds": "20", "max_concurrent_calls": "5",
    }

    staff_client.post(url, data)

    connection.refresh_from_db()
    assert connection.get_client_secret() == "brand-new-secret"
    entry = organization.audit_log.get(action="admin.change_connection")
    assert entry.changes["client_secret_changed"] is True
    assert "brand-new-secret" not in str(entry.changes)


def test_admin_rejects_base_url_not_allowed(staff_client, settings):
    settings.MARKETO_ALLOWED_BASE_URLS = []
    organization = make_org("acme")
    connection = stored_connection(organization)
    url = reverse("admin:integrations_marketoconnection_change", args=[connection.pk])
    data = {
        "munchkin_id": "417-QWE-902", "client_id": "docket-demo-client", "client_secret": "",
        "base_url_override": "http://10.0.0.5:8080", "daily_quota": "50000", "docket_quota_percent": "50",
        "rate_limit_calls": "50", "rate_limit_window_seconds": "20", "max_concurrent_calls": "5",
    }

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert "MARKETO_ALLOWED_BASE_URLS" in response.content.decode()
    connection.refresh_from_db()
    assert connection.base_url_override == ""


def test_settings_connect_form_has_no_base_url(client):
    organization = make_org("acme")
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)

    html = client.get(reverse("settings-marketo")).content.decode()

    assert "base_url" not in html


@pytest.mark.parametrize(
    "name, kwargs",
    [("settings-marketo", None), ("settings-marketo-disconnect", None), ("settings-marketo-test", None)],
)
def test_csrf_enforced_on_settings_posts(name, kwargs):
    organization = make_org("acme")
    stored_connection(organization)
    make_org_admin(organization, "admin@acme.example")
    client = Client(enforce_csrf_checks=True)
    client.login(username="admin@acme.example", password=PASSWORD)

    response = client.post(reverse(name), {"munchkin_id": "417-QWE-902", "client_id": "a", "client_secret": "b"})

    assert response.status_code == 403
    assert MarketoConnection.objects.get(organization=organization).status == MarketoConnection.Status.CONNECTED


def test_csrf_enforced_on_agent_save():
    organization = make_org("acme")
    agent = make_agent(organization, "agt_1")
    make_org_admin(organization, "admin@acme.example")
    client = Client(enforce_csrf_checks=True)
    client.login(username="admin@acme.example", password=PASSWORD)

    response = client.post(reverse("agent-marketo", args=[agent.pk]), {"marketo_enabled": "on"})

    assert response.status_code == 403
    agent.writeback.refresh_from_db()
    assert agent.writeback.marketo_enabled is False


def test_csrf_enforced_on_admin_action():
    make_staff()
    client = Client(enforce_csrf_checks=True)
    client.login(username="cs@docket.example", password=PASSWORD)

    response = client.post(reverse("admin:integrations_writebackrecord_changelist"), {"action": "skip_selected"})

    assert response.status_code == 403


def make_conversation(agent):
    now = timezone.now()
    return Conversation.objects.create(
        organization=agent.organization, agent=agent, external_id="conv_1",
        started_at=now - timedelta(minutes=5), ended_at=now,
        summary=f"Visitor said {SCRIPT}",
        transcript=[{"role": "visitor", "text": f"hi {SCRIPT}"}, {"role": "agent", "text": "<b>hello</b>"}],
        attribution={"utm_source": "<img src=x onerror=alert(1)>"},
        attribution_sources={"utm_source": "landing_page_url"},
    )


def test_admin_escapes_conversation_data(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", f"Agent {SCRIPT}")
    conversation = make_conversation(agent)

    html = staff_client.get(reverse("admin:agents_conversation_change", args=[conversation.pk])).content.decode()

    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<b>hello</b>" not in html
    assert "<img src=x" not in html
    assert "landing_page_url" in html
    assert "<strong>Visitor:</strong>" in html


def test_admin_escapes_agent_name(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", f"Agent {SCRIPT}")

    for url in (reverse("admin:agents_agent_changelist"), reverse("admin:agents_agent_change", args=[agent.pk])):
        html = staff_client.get(url).content.decode()
        assert SCRIPT not in html, url


def test_settings_pages_escape_agent_name(client):
    organization = make_org("acme", f"Acme {SCRIPT}")
    agent = make_agent(organization, "agt_1", f"Agent {SCRIPT}")
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)

    for url in (reverse("agent-list"), reverse("agent-marketo", args=[agent.pk]), reverse("settings-marketo")):
        html = client.get(url).content.decode()
        assert SCRIPT not in html, url
        assert "&lt;script&gt;" in html, url


def test_connected_page_escapes_status_message(client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    MarketoConnection.objects.filter(organization=organization).update(usage_warning=SCRIPT)
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)

    html = client.get(reverse("settings-marketo")).content.decode()

    assert SCRIPT not in html
