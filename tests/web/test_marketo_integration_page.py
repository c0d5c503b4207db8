"""Settings → Integrations → Marketo: connect, status, test, disconnect, errors shown verbatim."""

import json
from pathlib import Path

import pytest
import requests
from django.urls import reverse

from integrations.models import AuditLogEntry, MarketoConnection
from tests.web.helpers import CLIENT_ID, CLIENT_SECRET, MUNCHKIN_ID, PASSWORD, connect, make_org, make_org_admin

pytestmark = pytest.mark.django_db

DEFAULT_SEED = Path(__file__).resolve().parents[2] / "integrations" / "marketo" / "sandbox" / "default_seed.json"
CHANNEL_MISSING = "The Docket channel does not exist in Marketo. Please refer to the integration guide for prerequisites."


@pytest.fixture
def admin_client(client):
    organization = make_org("acme", "Acme")
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)
    return client, organization


def staff_set_base_url(organization, url):
    """Create the connection row a staff user prepares in the admin, pointing at the sandbox."""
    return MarketoConnection.objects.create(
        organization=organization, munchkin_id=MUNCHKIN_ID, client_id="", base_url_override=url,
    )


def test_login_lands_on_marketo_page(client):
    organization = make_org("acme")
    make_org_admin(organization, "admin@acme.example")

    response = client.post(reverse("login"), {"username": "admin@acme.example", "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("settings-marketo")
    assert "Settings → Integrations → Marketo" in response.content.decode()


def test_not_connected_page(admin_client):
    client, _ = admin_client

    html = client.get(reverse("settings-marketo")).content.decode()

    assert "Not connected" in html
    for label in ("Munchkin Account ID", "Client ID", "Client Secret"):
        assert label in html
    assert "Test connection" not in html


def test_connect_through_form(admin_client, marketo_sandbox):
    client, organization = admin_client
    staff_set_base_url(organization, marketo_sandbox.url)

    response = client.post(
        reverse("settings-marketo"),
        {"munchkin_id": MUNCHKIN_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        follow=True,
    )

    html = response.content.decode()
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.base_url_override == marketo_sandbox.url
    assert f"Connected to Marketo {MUNCHKIN_ID}" in html
    assert str(connection.program_id) in html
    assert str(connection.conversation_activity_type_id) in html
    assert "Docket Meeting Booked" in html
    assert AuditLogEntry.objects.filter(organization=organization, actor="admin@acme.example").exists()


def test_wrong_secret_shown_verbatim(admin_client, marketo_sandbox):
    client, organization = admin_client
    staff_set_base_url(organization, marketo_sandbox.url)

    response = client.post(
        reverse("settings-marketo"),
        {"munchkin_id": MUNCHKIN_ID, "client_id": CLIENT_ID, "client_secret": "wrong"},
    )

    html = response.content.decode()
    assert "Marketo rejected the Client ID or Client Secret." in html
    assert MarketoConnection.objects.get(organization=organization).status == MarketoConnection.Status.NOT_CONNECTED


def test_missing_channel_message_verbatim(admin_client, marketo_sandbox):
    client, organization = admin_client
    connect(organization, marketo_sandbox.url)
    seed = json.loads(DEFAULT_SEED.read_text())
    seed["channels"] = [channel for channel in seed["channels"] if channel["name"] != "Docket"]
    reset = requests.post(f"{marketo_sandbox.url}/_sandbox/reset", json={"seed": seed}, timeout=10)
    assert reset.ok, reset.text

    response = client.post(reverse("settings-marketo-test"), follow=True)

    assert CHANNEL_MISSING in response.content.decode()


def test_test_connection_reports_success(admin_client, marketo_sandbox):
    client, organization = admin_client
    connect(organization, marketo_sandbox.url)

    response = client.post(reverse("settings-marketo-test"), follow=True)

    html = response.content.decode()
    assert f"Connected to Marketo {MUNCHKIN_ID}" in html
    assert "Adopted" in html or "adopted" in html


def test_disconnect_clears_secret(admin_client, marketo_sandbox):
    client, organization = admin_client
    connect(organization, marketo_sandbox.url)

    response = client.post(reverse("settings-marketo-disconnect"), follow=True)

    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.DISCONNECTED
    assert connection.client_secret_encrypted == ""
    html = response.content.decode()
    assert "Disconnected" in html
    assert "Test connection" not in html
    assert AuditLogEntry.objects.filter(organization=organization, action="marketo.disconnect").exists()


def test_get_not_allowed_on_disconnect(admin_client):
    client, _ = admin_client

    response = client.get(reverse("settings-marketo-disconnect"))

    assert response.status_code == 405


def test_logout_needs_post(admin_client):
    client, _ = admin_client

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert client.get(reverse("agent-list")).status_code == 302
